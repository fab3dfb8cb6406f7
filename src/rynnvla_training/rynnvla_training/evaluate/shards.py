"""`rynnvla-eval --workers N`: one evaluation split over N processes, each a full system.

Episodes run in real time, so 60 episodes take ~15 minutes on one system, while one system (sim
node + policy node) keeps only about a quarter of a 2-core machine busy. Each shard process
runs the ordinary `evaluate` (the composed sim and policy nodes talking over DDS) on its share
of the seeds: shard k takes seeds seed_start + k, seed_start + k + N, ... of every task, and
only shard 0 writes videos. Shard k sets ROS_DOMAIN_ID to (base + k) mod 101, where base is
this process's ROS_DOMAIN_ID, so the systems never see each other's topics.

A shard appends each finished episode (with its per-chunk latencies) to
<out>/shards/<k>/episodes.jsonl; the parent follows those files for its progress bar and merges
them into one <out>/results.json, as if one system had run every episode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from rynnvla_training.evaluate.config import EvalConfig, EvalConfigError
from rynnvla_training.evaluate.episode import EpisodeResult
from rynnvla_training.evaluate.report import EvalReport

SHARD_DIR = "shards"
EPISODES_FILE = "episodes.jsonl"
CONFIG_FILE = "config.json"
LOG_FILE = "log.txt"
MAX_DOMAIN_ID = 100  # the portable ROS_DOMAIN_ID range is [0, 101]
POLL_S = 0.5


def shard_domain(base: int, index: int) -> int:
    """ROS_DOMAIN_ID of shard `index` when this process runs on domain `base`."""
    return (base + index) % (MAX_DOMAIN_ID + 1)


def base_domain() -> int:
    text = os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"
    try:
        value = int(text)
    except ValueError:
        raise EvalConfigError(f"ROS_DOMAIN_ID={text!r}: expected an integer") from None
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise EvalConfigError(f"ROS_DOMAIN_ID={value}: expected 0..{MAX_DOMAIN_ID}")
    return value


def shard_configs(config: EvalConfig, workers: int) -> list[EvalConfig]:
    """The per-process configs: seeds dealt round-robin, videos from shard 0 only, and the
    cores shared out (each policy node's torch threads, unless the caller set cpu_threads)."""
    if not isinstance(workers, int) or workers < 2:
        raise EvalConfigError(f"workers={workers!r}: sharding needs at least 2 processes")
    if workers > config.total_episodes:
        raise EvalConfigError(
            f"workers={workers}: more processes than the {config.total_episodes} episodes"
        )
    threads = max(1, (os.cpu_count() or 1) // workers)
    policy = {"cpu_threads": threads, **config.policy_overrides}
    return [
        replace(
            config,
            policy_overrides=policy,
            shard_index=k,
            shard_count=workers,
            out_dir=config.out_dir / SHARD_DIR / str(k),
            videos_per_task=config.videos_per_task if k == 0 else 0,
            progress=False,
        )
        for k in range(workers)
    ]


def run_sharded(config: EvalConfig, workers: int, log=print) -> EvalReport:
    """Run the evaluation in `workers` processes; merge and write results.json; return it."""
    from tqdm import tqdm

    from rynnvla_training.evaluate.runner import RESULTS_FILE, EvalAbortedError, settings_of

    shards = shard_configs(config, workers)
    base = base_domain()
    started = time.monotonic()
    processes = [_start(shard, shard_domain(base, shard.shard_index)) for shard in shards]
    log(
        f"rynnvla-eval: {workers} processes on ROS domains "
        f"{[shard_domain(base, k) for k in range(workers)]}; logs in {config.out_dir / SHARD_DIR}"
    )
    bar = tqdm(total=config.total_episodes, desc="eval", unit="ep", disable=not config.progress)
    try:
        while any(p.poll() is None for p in processes):
            bar.update(sum(_count(s) for s in shards) - bar.n)
            time.sleep(POLL_S)
        bar.update(sum(_count(s) for s in shards) - bar.n)
    finally:
        bar.close()
        for process in processes:  # interrupted: no orphaned systems keep running
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:  # stuck in shutdown: do not leave it behind
                    process.kill()
                    process.wait()
    report = merge(config, shards, settings={**settings_of(config), "workers": workers})
    report.wall_s = time.monotonic() - started
    report.write_json(config.out_dir / RESULTS_FILE)
    failed = [(s, p.returncode) for s, p in zip(shards, processes, strict=True) if p.returncode]
    if failed:
        shard, code = failed[0]
        raise EvalAbortedError(
            f"shard {shard.shard_index} exited with {code}: {_tail(shard.out_dir / LOG_FILE)}",
            report,
        )
    return report


def merge(config: EvalConfig, shards: list[EvalConfig], settings: dict) -> EvalReport:
    """One report of every shard's episodes, ordered by task (config order), then seed."""
    order = {task: i for i, task in enumerate(config.episodes)}
    episodes = [episode for shard in shards for episode in read_episodes(shard.out_dir)]
    episodes.sort(key=lambda e: (order.get(e.task_id, len(order)), e.seed))
    report = EvalReport(str(config.checkpoint), episodes, settings=settings)
    report.videos = [e.video for e in episodes if e.video]
    report.startup_s = max((_startup_s(shard.out_dir) for shard in shards), default=0.0)
    return report


def read_episodes(shard_dir: Path) -> list[EpisodeResult]:
    path = Path(shard_dir) / EPISODES_FILE
    if not path.is_file():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]  # a shard killed mid-write leaves a partial line
    return [EpisodeResult(**json.loads(line)) for line in complete.splitlines() if line.strip()]


def _start(shard: EvalConfig, domain: int) -> subprocess.Popen:
    shard.out_dir.mkdir(parents=True, exist_ok=True)
    (shard.out_dir / EPISODES_FILE).unlink(missing_ok=True)  # a rerun starts empty
    config_path = shard.out_dir / CONFIG_FILE
    config_path.write_text(json.dumps(shard.to_dict(), indent=2) + "\n")
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain)}
    with open(shard.out_dir / LOG_FILE, "w") as log_file:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", __name__, str(config_path)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _count(shard: EvalConfig) -> int:
    try:
        with open(shard.out_dir / EPISODES_FILE) as f:
            return sum(1 for line in f if line.endswith("\n"))
    except FileNotFoundError:
        return 0


def _startup_s(shard_dir: Path) -> float:
    from rynnvla_training.evaluate.runner import RESULTS_FILE

    try:
        return float(json.loads((shard_dir / RESULTS_FILE).read_text())["startup_s"])
    except (OSError, ValueError, KeyError):
        return 0.0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text().strip().splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def shard_main(config_path: str) -> int:
    """A shard process: the ordinary evaluation of its seeds, streaming each episode."""
    from rynnvla_bringup.composed import ComposedSystemError
    from rynnvla_bringup.params import ParamsLayerError
    from rynnvla_training.evaluate.runner import EvalAbortedError, evaluate

    data = json.loads(Path(config_path).read_text())
    config = EvalConfig(**data)
    episodes_path = config.out_dir / EPISODES_FILE

    def append(result: EpisodeResult) -> None:
        with open(episodes_path, "a") as f:  # one whole line per episode
            f.write(json.dumps(asdict(result)) + "\n")

    def log(text: str) -> None:
        print(text, flush=True)

    try:
        evaluate(config, log=log, on_episode=append)
    except (EvalConfigError, ComposedSystemError, ParamsLayerError) as exc:
        print(f"shard {config.shard_index}: {exc}", flush=True)
        return 2
    except EvalAbortedError as exc:
        print(f"shard {config.shard_index}: aborted: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    sys.exit(shard_main(sys.argv[1]))
