"""`rynnvla-eval`: closed-loop evaluation of a checkpoint on the simulated arm, through the real
ROS nodes (sim node + policy node in one process, talking over DDS).

    rynnvla-eval --checkpoint ckpt --episodes 10 --out eval/
    rynnvla-eval --checkpoint ckpt --episodes block_to_plate=50,pen_to_holder=5 --out eval/

Prints a per-task success table and, as its LAST line, one JSON object:
{"success": {task: rate}, "mean_episode_s": .., "latency_p50_ms": .., "latency_p99_ms": .., ...}.
Writes <out>/results.json and rollout videos <out>/videos/<task>_seed<seed>.mp4 (H.264).

`--workers N` splits the episodes over N processes, each with its own sim and policy nodes on
its own ROS domain (evaluate/shards.py).

`--direct` runs the model alone in sim time instead (no ROS, no latency, no blending; about ten
times faster than real time): for choosing checkpoints, not for the deployment figure
(see evaluate/direct.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from rynnvla_training.evaluate.config import (
    DEFAULT_SEED_START,
    EvalConfig,
    EvalConfigError,
    parse_episodes,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rynnvla-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="policy checkpoint directory")
    parser.add_argument(
        "--episodes",
        default="10",
        help="episodes per task: N (every task) or task=N,task=N (default 10)",
    )
    parser.add_argument("--out", required=True, help="output directory (results.json, videos/)")
    parser.add_argument(
        "--seed-start",
        type=int,
        default=DEFAULT_SEED_START,
        help=f"first layout seed (default {DEFAULT_SEED_START}: held out from collection)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="simulated seconds per episode (default 30)"
    )
    parser.add_argument(
        "--real-time-factor",
        type=float,
        default=1.0,
        help="simulated seconds per wall second (default 1: real time, as deployed; > 1 runs "
        "faster but the policy's latency then counts that many times more in sim time)",
    )
    parser.add_argument(
        "--videos-per-task", type=int, default=1, help="rollout videos per task (default 1)"
    )
    parser.add_argument("--video-fps", type=float, default=15.0)
    parser.add_argument("--video-camera", default="front", help="camera shown in the videos")
    parser.add_argument(
        "--chunk-timeout",
        type=float,
        default=30.0,
        help="wall seconds to wait for the policy's first chunks of an episode (default 30)",
    )
    parser.add_argument("--robot", default="sim_arm", help="robot profile of the policy node")
    parser.add_argument(
        "--distractors", action="store_true", help="distractor objects on the table"
    )
    parser.add_argument(
        "-p", "--param", action="append", default=[], help="policy parameter name:=value"
    )
    parser.add_argument(
        "--sim-param", action="append", default=[], help="sim parameter name:=value"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="evaluation processes, each its own sim + policy nodes on its own ROS domain, "
        "sharing the seeds (default 1; 2 halves the wall time on 2 idle cores)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="the model alone in a closed loop in sim time (no ROS nodes, latency, blending or "
        "videos; ~10x real time): to compare checkpoints quickly",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        default=0,
        help="--direct: chunk steps executed before the next inference (default: the policy "
        "node's execution_horizon)",
    )
    return parser


ROS_ONLY = {  # option -> its default: what --direct cannot honour
    "real_time_factor": 1.0,
    "param": [],
    "sim_param": [],
    "distractors": False,
    "robot": "sim_arm",
    "workers": 1,
}


def check_mode(args: argparse.Namespace) -> None:
    """--direct runs no ROS node: options for the nodes would be silently ignored, so refuse."""
    if args.workers < 1:
        raise EvalConfigError(f"--workers {args.workers}: expected an integer >= 1")
    if not args.direct:
        if args.horizon:
            raise EvalConfigError(
                f"--horizon {args.horizon}: only for --direct (set the policy node's "
                "execution_horizon with -p execution_horizon:=N)"
            )
        return
    given = [name for name, default in ROS_ONLY.items() if getattr(args, name) != default]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise EvalConfigError(f"{options}: not used by --direct, which runs no ROS node")


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    from rynnvla_bringup.params import parse_override

    return EvalConfig(
        checkpoint=args.checkpoint,
        episodes=parse_episodes(args.episodes),
        out_dir=args.out,
        seed_start=args.seed_start,
        timeout_s=args.timeout,
        real_time_factor=args.real_time_factor,
        videos_per_task=args.videos_per_task,
        video_fps=args.video_fps,
        video_camera=args.video_camera,
        robot=args.robot,
        chunk_timeout_s=args.chunk_timeout,
        distractors=args.distractors,
        policy_overrides=dict(parse_override(p) for p in args.param),
        sim_overrides=dict(parse_override(p) for p in args.sim_param),
        progress=not args.quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    args = build_parser().parse_args(argv)
    from rynnvla_bringup.composed import ComposedSystemError
    from rynnvla_bringup.params import ParamsLayerError
    from rynnvla_training.evaluate.runner import RESULTS_FILE, EvalAbortedError, evaluate

    try:
        check_mode(args)
        config = config_from_args(args)
        if args.direct:
            from rynnvla_training.evaluate.direct import default_horizon, evaluate_direct

            config = replace(config, videos_per_task=0)
            report = evaluate_direct(config, args.horizon or default_horizon(), _log)
        elif args.workers > 1:
            from rynnvla_training.evaluate.shards import run_sharded

            report = run_sharded(config, args.workers, _log)
        else:
            report = evaluate(config, log=_log)
    except (EvalConfigError, ComposedSystemError, ParamsLayerError) as exc:
        print(f"rynnvla-eval: {exc}", file=sys.stderr)
        return 2
    except EvalAbortedError as exc:
        print(f"rynnvla-eval: aborted: {exc} (partial results in {args.out})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rynnvla-eval: interrupted", file=sys.stderr)
        return 130
    print(report.table())
    for video in report.videos:
        print(f"video: {video}")
    print(f"results: {config.out_dir / RESULTS_FILE}")
    print(json.dumps(report.summary_line(config.out_dir / RESULTS_FILE)), flush=True)
    return 0


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
