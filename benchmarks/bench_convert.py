"""Benchmark of rynnvla-convert on a recording it generates itself.

Recording: two 640x480 30 fps cameras (raw rgb8 by default, or JPEG), 200 Hz joint states,
30 Hz commanded trajectories, an instruction; ``--duration`` seconds (default 60).

Measures
- read_s: reading and deserialising every message of the bag with rosbags (the floor),
  measured before every conversion (the fastest is reported); this pass also brings the bag
  into the page cache when memory allows, so a slow first read_s means a cold disk read;
- convert_s: the ``rynnvla-convert`` command end to end (a child process), default settings;
- peak_rss_mb: the largest resident set of the conversion's processes (ru_maxrss).
Prints progress lines, then ONE final JSON line with realtime_factor (recording seconds per
conversion second), ratio_to_read (convert_s / read_s), peak_rss_mb, and convert_cpu_s (CPU
seconds of all its threads: a figure that a busy machine does not distort much), plus the
1-minute load average before and after: on a shared machine, wall-clock figures measured
at a load above the core count are slowed by the other processes, not by the converter.
With ``--repeat N`` the conversion runs N times and the fastest run is reported (the usual
way to take a wall-clock figure on a noisy machine); every run is printed.

    python benchmarks/bench_convert.py                      # 60 s recording
    python benchmarks/bench_convert.py --duration 600       # the 10-minute memory figure
    python benchmarks/bench_convert.py --workdir /tmp/b --reuse --repeat 3   # keep the bag
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _spec(duration_s: float, images: str, storage: str):
    from rynnvla_training.convert.synthetic import RecordingSpec

    return RecordingSpec(
        duration_s=duration_s,
        image_size=(480, 640),
        image_format=images,
        storage=storage,
        drop_rate=0.002,
        noise=6,  # sensor noise: keeps the encoder honest
        seed=0,
    )


SPEC_FILE = "bench_spec.json"  # next to the recording: what it was generated with


def _generate(path: Path, spec, reuse: bool) -> float | None:
    """Writes the recording; None when ``reuse`` found one generated with the same spec."""
    from rynnvla_training.convert.synthetic import write_recording

    marker = path.parent / SPEC_FILE
    wanted = json.dumps(dataclasses.asdict(spec), sort_keys=True)
    if reuse and path.is_dir() and marker.is_file() and marker.read_text() == wanted:
        return None
    shutil.rmtree(path, ignore_errors=True)
    marker.unlink(missing_ok=True)
    start = time.perf_counter()
    write_recording(path, spec)
    marker.write_text(wanted)
    return time.perf_counter() - start


def _read_everything(path: Path) -> tuple[float, int]:
    """Seconds to read and deserialise every message with rosbags; message count."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    start = time.perf_counter()
    count = 0
    with AnyReader([path], default_typestore=get_typestore(Stores.LATEST)) as reader:
        for connection, _, raw in reader.messages():
            reader.deserialize(raw, connection.msgtype)
            count += 1
    return time.perf_counter() - start, count


def _convert(bag: Path, output: Path, workers: int | None) -> tuple[float, float, float, str]:
    """Runs the CLI in a child process -> (seconds, CPU seconds, peak RSS MB, stdout)."""
    command = [sys.executable, "-m", "rynnvla_training.convert.cli", str(bag), "-o", str(output)]
    command += ["--quiet"] + (["--workers", str(workers)] if workers else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"conversion failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # totals over all waited-for children
    cpu_s = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
    # ru_maxrss of waited-for descendants: the largest one so far (KiB on Linux)
    return seconds, cpu_s, usage.ru_maxrss / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="recording seconds")
    parser.add_argument("--images", choices=("raw", "jpeg"), default="raw")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    parser.add_argument("--workers", type=int, help="converter workers (default: its own)")
    parser.add_argument("--workdir", help="where to put the bag (default: a temp dir)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep a recording of the same spec in --workdir"
    )
    parser.add_argument("--repeat", type=int, default=1, help="conversions (fastest reported)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_convert_"))
    workdir.mkdir(parents=True, exist_ok=True)
    bag, output = workdir / "recording", workdir / "dataset"
    shutil.rmtree(output, ignore_errors=True)
    load_before = os.getloadavg()[0]
    try:
        generate_s = _generate(bag, _spec(args.duration, args.images, args.storage), args.reuse)
        bag_mb = sum(p.stat().st_size for p in bag.iterdir()) / 2**20
        how = "reused" if generate_s is None else f"generated in {generate_s:.1f} s"
        print(f"{args.duration:.0f} s recording ({bag_mb:.0f} MB): {how}")
        runs, reads = [], []
        for run in range(args.repeat):  # read, convert, read, ...: alike conditions for both
            reads.append(_read_everything(bag))
            print(f"read + deserialise {reads[-1][1]} messages: {reads[-1][0]:.2f} s")
            shutil.rmtree(output, ignore_errors=True)
            runs.append(_convert(bag, output, args.workers))
            convert_s, cpu_s, peak_mb, stdout = runs[-1]
            print(stdout.strip().splitlines()[-1] if stdout.strip() else "")
            print(
                f"convert run {run + 1}: {convert_s:.2f} s ({cpu_s:.1f} CPU s), "
                f"peak RSS {peak_mb:.0f} MB, load {os.getloadavg()[0]:.1f}"
            )
        read_s = min(seconds for seconds, _ in reads)
        convert_s, cpu_s, _, _ = min(runs, key=lambda r: r[0])  # the fastest run
        peak_mb = max(r[2] for r in runs)
        frames = json.loads((output / "meta/info.json").read_text())["total_frames"]
        dataset_mb = sum(p.stat().st_size for p in output.rglob("*") if p.is_file()) / 2**20
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "convert",
        "recording_s": args.duration,
        "images": args.images,
        "storage": args.storage,
        "cameras": "2x 640x480 @ 30 fps",
        "joint_states_hz": 200,
        "bag_mb": round(bag_mb, 1),
        "dataset_mb": round(dataset_mb, 1),
        "frames": frames,
        "read_s": round(read_s, 3),
        "convert_s": round(convert_s, 3),
        "realtime_factor": round(args.duration / convert_s, 2),
        "ratio_to_read": round(convert_s / read_s, 2),
        "peak_rss_mb": round(peak_mb, 1),
        # load-independent figures: CPU time, and the speed it allows on 2 idle cores
        "convert_cpu_s": round(cpu_s, 2),
        "cpu_bound_realtime_factor_2_cores": round(args.duration / (cpu_s / 2), 2),
        "cpu_count": os.cpu_count(),
        "runs": args.repeat,
        "convert_s_all": [round(r[0], 3) for r in runs],
        "convert_cpu_s_all": [round(r[1], 2) for r in runs],
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
