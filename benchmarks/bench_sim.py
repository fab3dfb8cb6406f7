"""Benchmark of the simulated arm (``make bench-sim``).

1. Scripted-expert success per task over ``--seeds`` seeds (default 100), run exactly as the
   recorder runs it (targets at 30 Hz through the joint_trajectory_controller follower at
   500 Hz), without cameras or bags (they do not change the physics).
2. Demonstration recording speed: ``rynnvla-sim-collect`` with 2 cameras at 128x96 30 Hz,
   joint states at 200 Hz, ``--workers`` processes (default 2): simulated seconds recorded per
   wall second, end to end (process start-up included) and per worker (episodes only).

Prints a table, then ONE JSON line with ``expert_success`` (task -> rate) and
``collect_realtime_factor`` (target: >= 3). Wall-clock speed depends on what else runs; the
workers' CPU time gives a load-independent figure too (``collect_sim_seconds_per_cpu_second``,
and ``collect_realtime_factor_idle_estimate`` = that x the cores the workers can use).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from rynnvla_sim.collect import CollectConfig, collect
from rynnvla_sim.recording import RecordSpec
from rynnvla_sim.tasks import TASKS


def _rollouts(task_id: str, seeds: list[int]) -> list[tuple[int, bool, float]]:
    """(seed, success, sim seconds) of dry-run episodes in one worker process."""
    from rynnvla_sim.env import ArmSimEnv, SimConfig
    from rynnvla_sim.recording import EpisodeRecorder

    env = ArmSimEnv(SimConfig())
    recorder = EpisodeRecorder(env, RecordSpec(), "sqlite3")
    out = []
    for seed in seeds:
        result = recorder.record(task_id, seed, None)
        out.append((seed, result.success, result.duration_s))
    env.close()
    return out


def expert_success(n_seeds: int, workers: int) -> tuple[dict[str, float], dict[str, list[int]]]:
    from tqdm import tqdm

    chunk = 10
    jobs = [
        (task, list(range(start, min(start + chunk, n_seeds))))
        for task in sorted(TASKS)
        for start in range(0, n_seeds, chunk)
    ]
    results: dict[str, list[tuple[int, bool, float]]] = {t: [] for t in TASKS}
    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(workers, mp_context=context) as pool,
        tqdm(total=n_seeds * len(TASKS), desc="expert episodes", unit="ep") as bar,
    ):
        futures = {pool.submit(_rollouts, task, seeds): task for task, seeds in jobs}
        for future in as_completed(futures):
            results[futures[future]].extend(future.result())
            bar.update(len(future.result()))
    rates = {t: sum(ok for _, ok, _ in r) / len(r) for t, r in sorted(results.items())}
    failures = {t: sorted(s for s, ok, _ in r if not ok) for t, r in sorted(results.items())}
    return rates, failures


def collect_speed(episodes: int, workers: int, storage: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    try:
        config = CollectConfig(
            tasks=tuple(sorted(TASKS)),
            episodes=episodes,
            out=out,
            storage=storage,
            workers=workers,
            spec=RecordSpec(image_width=128, image_height=96, camera_rate_hz=30.0),
        )
        cpu_before = _children_cpu_s()
        start = time.perf_counter()
        summary = collect(config, progress=True)
        wall = time.perf_counter() - start
        cpu = _children_cpu_s() - cpu_before  # the workers' CPU time (they have exited)
        bag_bytes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        per_episode = _episode_walls(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    sim = summary["recorded_sim_seconds"]
    return {
        "episodes": sum(len(t["episodes"]) for t in summary["tasks"].values()),
        "sim_seconds": sim,
        "wall_seconds": round(wall, 2),
        "realtime_factor": round(sim / wall, 2),
        "per_worker_realtime_factor": round(sim / per_episode, 2) if per_episode else None,
        # load-independent: recorded seconds per CPU second of the workers (start-up included)
        "sim_seconds_per_cpu_second": round(sim / cpu, 2) if cpu > 0 else None,
        "mb_per_sim_second": round(bag_bytes / 1e6 / max(sim, 1e-9), 2),
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _episode_walls(out: Path) -> float:
    """Sum of the episodes' own wall times (recorded in collection.json by the workers)."""
    summary = json.loads((out / "collection.json").read_text())
    return summary.get("episode_wall_seconds", 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="expert seeds per task")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--collect-episodes", type=int, default=2, help="per task")
    parser.add_argument("--storage", choices=["sqlite3", "mcap"], default="mcap")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rates, failures = expert_success(args.seeds, args.workers)
    expert_wall = time.perf_counter() - start
    speed = collect_speed(args.collect_episodes, args.workers, args.storage)
    cores = min(args.workers, os.cpu_count() or 1)
    per_cpu = speed["sim_seconds_per_cpu_second"]
    speed["idle_estimate"] = round(per_cpu * cores, 2) if per_cpu else None

    print()
    print(f"{'task':<22}{'expert success':>16}  failed seeds")
    for task, rate in rates.items():
        print(f"{task:<22}{rate:>15.1%}  {failures[task][:10]}")
    print(f"(expert: {args.seeds} seeds per task in {expert_wall:.0f} s, {args.workers} workers)")
    print()
    print(
        f"collection ({args.workers} workers, 2 cameras 128x96 @ 30 Hz, {args.storage}): "
        f"{speed['episodes']} episodes, {speed['sim_seconds']:.1f} s recorded in "
        f"{speed['wall_seconds']:.1f} s -> {speed['realtime_factor']:.2f}x real time end to end, "
        f"{speed['per_worker_realtime_factor']}x per worker; "
        f"{speed['mb_per_sim_second']} MB per recorded second"
    )
    print(
        f"  {speed['sim_seconds_per_cpu_second']} recorded s per worker CPU s: on an idle "
        f"machine with {args.workers} free cores ~{speed['idle_estimate']}x real time "
        f"(the wall-clock figure above depends on the load: {os.getloadavg()[0]:.1f} now)"
    )
    print(
        json.dumps(
            {
                "expert_success": rates,
                "expert_seeds": args.seeds,
                "collect_realtime_factor": speed["realtime_factor"],
                "collect_realtime_factor_per_worker": speed["per_worker_realtime_factor"],
                "collect_sim_seconds_per_cpu_second": speed["sim_seconds_per_cpu_second"],
                "collect_realtime_factor_idle_estimate": speed["idle_estimate"],
                "load_average": round(os.getloadavg()[0], 2),
                "collect_workers": args.workers,
                "collect_episodes": speed["episodes"],
                "cpu_count": os.cpu_count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
