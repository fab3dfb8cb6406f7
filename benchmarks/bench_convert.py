"""Benchmark of rynnvla-convert on a recording it generates itself.

Recording: two 640x480 30 fps cameras (raw rgb8 by default, or JPEG), 200 Hz joint states,
30 Hz commanded trajectories, an instruction; ``--duration`` seconds (default 60).

Measures
- read_s: reading and deserialising every message of the bag with rosbags (the floor);
- convert_s: the ``rynnvla-convert`` command end to end (a child process), default settings;
- peak_rss_mb: the largest resident set of the conversion's processes (ru_maxrss).
Prints progress lines, then ONE final JSON line with realtime_factor (recording seconds per
conversion second), ratio_to_read (convert_s / read_s), peak_rss_mb, and convert_cpu_s (CPU
seconds of all its threads: a figure that a busy machine does not distort).

    python benchmarks/bench_convert.py                      # 60 s recording
    python benchmarks/bench_convert.py --duration 600       # the 10-minute memory figure
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _generate(path: Path, duration_s: float, images: str) -> float:
    from rynnvla_training.convert.synthetic import RecordingSpec, write_recording

    spec = RecordingSpec(
        duration_s=duration_s,
        image_size=(480, 640),
        image_format=images,
        drop_rate=0.002,
        noise=6,  # sensor noise: keeps the encoder honest
        seed=0,
    )
    start = time.perf_counter()
    write_recording(path, spec)
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
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"conversion failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = usage.ru_utime + usage.ru_stime  # all threads of all its processes
    # ru_maxrss of waited-for descendants: the largest one (KiB on Linux)
    return seconds, cpu_s, usage.ru_maxrss / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="recording seconds")
    parser.add_argument("--images", choices=("raw", "jpeg"), default="raw")
    parser.add_argument("--workers", type=int, help="converter workers (default: its own)")
    parser.add_argument("--workdir", help="where to put the bag (default: a temp dir)")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_convert_"))
    bag, output = workdir / "recording", workdir / "dataset"
    for path in (bag, output):
        shutil.rmtree(path, ignore_errors=True)
    try:
        generate_s = _generate(bag, args.duration, args.images)
        bag_mb = sum(p.stat().st_size for p in bag.iterdir()) / 2**20
        print(f"generated {args.duration:.0f} s recording ({bag_mb:.0f} MB) in {generate_s:.1f} s")
        read_s, messages = _read_everything(bag)
        print(f"read + deserialise {messages} messages: {read_s:.2f} s")
        convert_s, cpu_s, peak_mb, stdout = _convert(bag, output, args.workers)
        print(stdout.strip().splitlines()[-1] if stdout.strip() else "")
        print(f"convert: {convert_s:.2f} s ({cpu_s:.1f} CPU s), peak RSS {peak_mb:.0f} MB")
        frames = json.loads((output / "meta/info.json").read_text())["total_frames"]
        dataset_mb = sum(p.stat().st_size for p in output.rglob("*") if p.is_file()) / 2**20
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "convert",
        "recording_s": args.duration,
        "images": args.images,
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
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
