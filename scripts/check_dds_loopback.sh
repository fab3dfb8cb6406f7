#!/usr/bin/env bash
# Proves that DDS stays on this machine: captures every UDP packet on the non-loopback
# interfaces (one capture per interface) in the RTPS port range (7400-33000: every domain id's
# ports, and the discovery multicast group 239.255.0.1) while a command runs, and fails if any was seen.
#   sudo scripts/check_dds_loopback.sh make test
# Needs tcpdump and root (packet capture).
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: $0 COMMAND..." >&2; exit 2; }
command -v tcpdump >/dev/null || { echo "error: tcpdump is not installed" >&2; exit 2; }
workdir="$(mktemp -d)"
filter='udp and (portrange 7400-33000 or dst host 239.255.0.1)'
pids=()
for path in /sys/class/net/*; do
  iface="$(basename "$path")"
  [[ "$iface" == lo ]] && continue
  [[ "$(cat "$path/operstate" 2>/dev/null)" == down ]] && continue
  tcpdump -i "$iface" -n -w "$workdir/$iface.pcap" "$filter" 2>/dev/null &
  pids+=($!)
done
sleep 1   # let tcpdump open the captures before the command starts
status=0
"$@" || status=$?
sleep 1
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
leaked=0
for capture in "$workdir"/*.pcap; do
  [[ -f "$capture" ]] || continue
  count="$(tcpdump -n -r "$capture" 2>/dev/null | wc -l)"
  echo "[dds-check] $(basename "$capture" .pcap): $count RTPS packets"
  leaked=$((leaked + count))
  [[ "$count" -gt 0 ]] && tcpdump -n -r "$capture" 2>/dev/null | head -5
done
echo "[dds-check] command exit status: $status; RTPS packets on non-loopback interfaces: $leaked"
[[ "$leaked" -eq 0 ]] || exit 1
exit "$status"
