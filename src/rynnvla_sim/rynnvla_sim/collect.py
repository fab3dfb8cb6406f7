"""``rynnvla-sim-collect``: scripted-expert demonstrations as rosbag2 recordings, one per episode.

    rynnvla-sim-collect --task block_to_plate --episodes 50 --out demos --storage mcap

Each episode is one bag directory ``<out>/<task>_s<seed>/`` (metadata.yaml + .db3 or .mcap)
with the live system's topics and types (see ``recording.py``) and an ``episode.json`` sidecar
(task, instruction, seed, success, message counts, dropped frames, recording settings).
``<out>/collection.json`` summarises the run.

Failed episodes: by default a failed expert episode is discarded and the next seed is tried, so
``--episodes N`` yields N successful demonstrations per task (the first N successful seeds from
``--seed``, whatever the number of workers); the discarded seeds are listed in collection.json.
With ``--keep-failed`` exactly seeds ``seed .. seed+N-1`` are recorded and failures are kept,
marked ``"success": false`` in their episode.json.

Recovery demonstrations: with ``--lead-in-policy CHECKPOINT`` a trained policy drives each
episode for a random 0.5-5 s (``--lead-in-s``) before the expert takes over from wherever the
arm is; only the expert's part is recorded (``lead_in.py``, DAgger-style data aggregation).

Bags are written under ``<out>/.partial/`` and moved into place when complete, so an
interrupted run leaves no half-written bag; a re-run skips episodes already present.
Episodes run in parallel worker processes (``--workers``), each faster than real time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rynnvla_sim.bags import STORAGES
from rynnvla_sim.lead_in import LeadInSpec
from rynnvla_sim.recording import IMAGE_FORMATS, EpisodeResult, RecordSpec
from rynnvla_sim.tasks import TASKS

SIDECAR = "episode.json"
SUMMARY = "collection.json"
PARTIAL_DIR = ".partial"


@dataclass(frozen=True)
class CollectConfig:
    """One collection run; validated on construction (errors name the field and value)."""

    tasks: tuple[str, ...]
    episodes: int
    out: Path
    storage: str = "sqlite3"
    workers: int = 2
    seed: int = 0
    keep_failed: bool = False
    max_attempts_factor: float = 2.0  # give up on a task after this many x episodes attempts
    spec: RecordSpec = field(default_factory=RecordSpec)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "out", Path(self.out))
        unknown = [t for t in self.tasks if t not in TASKS]
        if not self.tasks or unknown:
            raise ValueError(f"CollectConfig.tasks: unknown {unknown}; tasks: {sorted(TASKS)}")
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ValueError(f"CollectConfig.episodes must be an int >= 1, got {self.episodes!r}")
        if self.storage not in STORAGES:
            raise ValueError(
                f"CollectConfig.storage must be one of {sorted(STORAGES)}, got {self.storage!r}"
            )
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"CollectConfig.workers must be an int >= 1, got {self.workers!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"CollectConfig.seed must be an int >= 0, got {self.seed!r}")

    @property
    def max_attempts(self) -> int:
        return max(self.episodes + 5, int(self.episodes * self.max_attempts_factor))


def episode_name(task_id: str, seed: int) -> str:
    return f"{task_id}_s{seed:06d}"


# --------------------------------------------------------------------------- worker process

_WORKER: dict = {}


def _recorder(spec: RecordSpec, storage: str):
    """One env + recorder per worker process (made on first use, in the worker)."""
    key = (spec, storage)
    if _WORKER.get("key") != key:
        from rynnvla_sim.env import ArmSimEnv, SimConfig
        from rynnvla_sim.recording import EpisodeRecorder

        if "env" in _WORKER:
            _WORKER["env"].close()
        env = ArmSimEnv(SimConfig(image_width=spec.image_width, image_height=spec.image_height))
        _WORKER.update(key=key, env=env, recorder=EpisodeRecorder(env, spec, storage))
    return _WORKER["recorder"]


def record_one(config: CollectConfig, task_id: str, seed: int) -> EpisodeResult:
    """Record one episode atomically; a failure is deleted unless ``keep_failed``."""
    from rynnvla_sim.recording import write_sidecar

    name = episode_name(task_id, seed)
    partial = config.out / PARTIAL_DIR / name
    shutil.rmtree(partial, ignore_errors=True)
    result = _recorder(config.spec, config.storage).record(task_id, seed, partial)
    if result.success or config.keep_failed:
        write_sidecar(result, config.spec, config.storage, partial / SIDECAR)
        final = config.out / name
        os.replace(partial, final)
        result.bag = str(final)
    else:
        shutil.rmtree(partial)
        result.bag = ""
    return result


def _existing(config: CollectConfig, task_id: str, seed: int) -> EpisodeResult | None:
    """A complete episode from an earlier run (its sidecar is written last)."""
    sidecar = config.out / episode_name(task_id, seed) / SIDECAR
    if not sidecar.is_file():
        return None
    meta = json.loads(sidecar.read_text())
    wanted = json.loads(json.dumps(asdict(config.spec)))  # as stored: tuples became lists
    if meta.get("record_spec") != wanted or meta.get("storage") != config.storage:
        raise SystemExit(
            f"{sidecar.parent} was recorded with other settings; use another --out or delete it"
        )
    if not meta["success"] and not config.keep_failed:
        raise SystemExit(
            f"{sidecar.parent} is a failed episode kept by a --keep-failed run; delete it or "
            "pass --keep-failed"
        )
    return EpisodeResult(
        task_id=task_id,
        seed=seed,
        instruction=meta["instruction"],
        success=meta["success"],
        time_to_success_s=meta["time_to_success_s"],
        duration_s=meta["duration_s"],
        wall_s=0.0,
        bag=str(sidecar.parent),
        message_counts=meta["message_counts"],
        dropped_frames=meta["dropped_frames"],
        expert_done=meta["expert_done"],
    )


# --------------------------------------------------------------------------- scheduling


class _TaskProgress:
    """Which seeds of one task to run next so that the result does not depend on timing."""

    def __init__(self, config: CollectConfig, task_id: str):
        self.task_id = task_id
        self.config = config
        self.next_seed = config.seed
        self.in_flight = 0
        self.kept: list[EpisodeResult] = []
        self.discarded: list[EpisodeResult] = []

    @property
    def attempts(self) -> int:
        return len(self.kept) + len(self.discarded) + self.in_flight

    def wants_more(self) -> bool:
        # never more in flight than still needed: the kept seeds are then the first N
        # successful ones in seed order (or seeds seed..seed+N-1 with keep_failed)
        needed = self.config.episodes - len(self.kept) - self.in_flight
        return needed > 0 and self.attempts < self.config.max_attempts

    def take_seed(self) -> int:
        seed = self.next_seed
        self.next_seed += 1
        return seed

    def add(self, result: EpisodeResult) -> None:
        if result.bag:
            self.kept.append(result)
        else:
            self.discarded.append(result)


def collect(config: CollectConfig, progress: bool = True) -> dict:
    """Record every episode of ``config``; returns the summary written to collection.json."""
    from tqdm import tqdm

    config.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(config.out / PARTIAL_DIR, ignore_errors=True)
    tasks = {t: _TaskProgress(config, t) for t in config.tasks}
    bar = tqdm(total=config.episodes * len(tasks), desc="episodes", unit="ep", disable=not progress)
    wall_start = time.perf_counter()
    sim_seconds = 0.0
    episode_wall = 0.0
    context = multiprocessing.get_context("spawn")  # EGL/MuJoCo state is never forked
    with ProcessPoolExecutor(config.workers, mp_context=context) as pool:
        running: dict[Future, _TaskProgress] = {}

        def refill() -> None:
            for task in tasks.values():
                while task.wants_more() and len(running) < 2 * config.workers:
                    seed = task.take_seed()
                    done = _existing(config, task.task_id, seed)
                    if done is not None:
                        task.add(done)
                        bar.update(1)
                        continue
                    task.in_flight += 1
                    running[pool.submit(record_one, config, task.task_id, seed)] = task

        refill()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                task.in_flight -= 1
                result = future.result()
                task.add(result)
                sim_seconds += result.duration_s
                episode_wall += result.wall_s
                if result.bag:
                    bar.update(1)
                wall = time.perf_counter() - wall_start
                bar.set_postfix(
                    discarded=sum(len(t.discarded) for t in tasks.values()),
                    realtime=f"{sim_seconds / max(wall, 1e-9):.1f}x",
                )
            refill()
    bar.close()
    wall = time.perf_counter() - wall_start
    summary = _summary(config, tasks, sim_seconds, wall)
    summary["episode_wall_seconds"] = round(episode_wall, 3)  # inside the workers, summed
    (config.out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(config.out / PARTIAL_DIR, ignore_errors=True)
    short = [t for t, p in tasks.items() if len(p.kept) < config.episodes]
    if short:
        raise RuntimeError(
            f"the expert failed too often on {short}: fewer than {config.episodes} successful "
            f"episodes in {config.max_attempts} attempts (see {config.out / SUMMARY})"
        )
    return summary


def _summary(config, tasks: dict[str, _TaskProgress], sim_seconds: float, wall: float) -> dict:
    return {
        "storage": config.storage,
        "workers": config.workers,
        "keep_failed": config.keep_failed,
        "record_spec": asdict(config.spec),
        "recorded_sim_seconds": round(sim_seconds, 3),
        "wall_seconds": round(wall, 3),
        "realtime_factor": round(sim_seconds / max(wall, 1e-9), 3),
        "tasks": {
            task_id: {
                "episodes": [
                    {
                        "bag": Path(r.bag).name,
                        "seed": r.seed,
                        "success": r.success,
                        "duration_s": r.duration_s,
                    }
                    for r in sorted(p.kept, key=lambda r: r.seed)
                ],
                "discarded_seeds": sorted(r.seed for r in p.discarded),
                "expert_success_rate": _rate(p),
            }
            for task_id, p in tasks.items()
        },
    }


def _rate(p: _TaskProgress) -> float:
    results = p.kept + p.discarded
    return round(sum(r.success for r in results) / max(len(results), 1), 4)


# --------------------------------------------------------------------------- CLI


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 128x96, got {text!r}") from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rynnvla-sim-collect",
        description="Record scripted-expert demonstrations of the simulated arm as rosbag2.",
    )
    parser.add_argument("--task", required=True, help=f"one of {sorted(TASKS)} or 'all'")
    parser.add_argument("--episodes", type=int, required=True, help="episodes per task")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="sqlite3")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default="raw")
    parser.add_argument("--size", type=_size, default=(128, 96), help="camera WxH (128x96)")
    parser.add_argument("--camera-rate", type=float, default=30.0, help="Hz")
    parser.add_argument("--joint-state-rate", type=float, default=200.0, help="Hz")
    parser.add_argument("--distractors", action="store_true", help="add distractor objects")
    parser.add_argument(
        "--keep-failed", action="store_true", help="keep failed episodes (marked in episode.json)"
    )
    parser.add_argument(
        "--lead-in-policy",
        type=Path,
        metavar="CHECKPOINT",
        help="recovery demonstrations (DAgger): this policy drives first, then the expert takes "
        "over from where the arm is; only the expert's part is recorded",
    )
    parser.add_argument(
        "--lead-in-s",
        type=_seconds_range,
        default=(0.5, 5.0),
        metavar="MIN:MAX",
        help="simulated seconds the lead-in policy drives, uniform per episode (0.5:5)",
    )
    parser.add_argument(
        "--lead-in-horizon",
        type=int,
        default=10,
        help="chunk steps the lead-in policy executes between inferences (10)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _seconds_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN:MAX seconds like 0.5:5, got {text!r}"
        ) from None
    return low, high


def _lead_in(args: argparse.Namespace) -> LeadInSpec | None:
    if args.lead_in_policy is None:
        return None
    return LeadInSpec(
        checkpoint=str(args.lead_in_policy),
        min_s=args.lead_in_s[0],
        max_s=args.lead_in_s[1],
        horizon=args.lead_in_horizon,
        # each worker process runs its own policy: share the cores, do not oversubscribe them
        torch_threads=max(1, (os.cpu_count() or 1) // max(1, args.workers)),
    )


def config_from_args(args: argparse.Namespace) -> CollectConfig:
    tasks = sorted(TASKS) if args.task == "all" else [args.task]
    spec = replace(
        RecordSpec(),
        image_format=args.image_format,
        image_width=args.size[0],
        image_height=args.size[1],
        camera_rate_hz=args.camera_rate,
        joint_state_rate_hz=args.joint_state_rate,
        distractors=args.distractors,
        lead_in=_lead_in(args),
    )
    return CollectConfig(
        tasks=tasks,
        episodes=args.episodes,
        out=args.out,
        storage=args.storage,
        workers=args.workers,
        seed=args.seed,
        keep_failed=args.keep_failed,
        spec=spec,
    )


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        summary = collect(config, progress=not args.quiet)
    except RuntimeError as exc:
        print(f"rynnvla-sim-collect: {exc}", file=sys.stderr)
        return 1
    kept = sum(len(t["episodes"]) for t in summary["tasks"].values())
    print(
        f"{kept} episodes in {config.out} ({summary['recorded_sim_seconds']:.1f} s recorded in "
        f"{summary['wall_seconds']:.1f} s: {summary['realtime_factor']:.1f}x real time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
