"""`rynnvla-demo` (`make demo`): the simulated arm driven by the shipped policy, through ROS.

Starts the sim node and the policy node (composed runner, same YAML as the launch files) with
the shipped checkpoint (src/rynnvla_bringup/checkpoints/sim_policy, trained by
`make train-sim`), runs a few episodes of each task through /sim/reset_episode and
/rynnvla_policy/set_instruction (the evaluation code of `rynnvla-eval`), prints success and
latency, writes rollout videos (mp4) and a latency plot (PNG), and prints their paths. The LAST
line is one JSON object: {"success": {task: rate}, "latency_p50_ms": .., "latency_p99_ms": ..,
...}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SHIPPED_NAME = "checkpoints/sim_policy"
DEFAULT_EPISODES = "block_to_plate=5,strawberry_to_bowl=3,pen_to_holder=3"
DEFAULT_OUT = "outputs/demo"
PLOT_FILE = "latency.png"


class DemoError(RuntimeError):
    """The demo cannot run (message says why and what to do)."""


def shipped_checkpoint_candidates() -> list[Path]:
    """Where the shipped checkpoint may be: the installed share dir, then the source tree."""
    from rynnvla_bringup.params import BRINGUP_PACKAGE, ParamsLayerError, package_share

    out = []
    with contextlib.suppress(ParamsLayerError):
        out.append(package_share(BRINGUP_PACKAGE) / SHIPPED_NAME)
    source = Path(__file__).resolve().parents[1] / SHIPPED_NAME
    if source not in out:
        out.append(source)
    return out


def find_checkpoint(given: str | None) -> Path:
    """The checkpoint to run: `given`, else the shipped one; DemoError if there is none."""
    if given:
        path = Path(given).expanduser()
        if not (path / "config.json").is_file():
            raise DemoError(f"--checkpoint {given}: not a checkpoint directory (no config.json)")
        return path
    for path in shipped_checkpoint_candidates():
        if (path / "config.json").is_file():
            return path
    where = shipped_checkpoint_candidates()[-1]
    raise DemoError(
        f"the shipped sim policy does not exist yet (looked for {where}). Train it with "
        "`make train-sim` (collect -> convert -> train -> eval, then `python "
        "scripts/train_sim.py --ship` copies it there), or run the demo on another checkpoint "
        "with `rynnvla-demo --checkpoint DIR`."
    )


def latency_plot(report, path: Path) -> Path:
    """PNG: inference and observation-to-chunk latency per chunk (time series + histogram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inference = [v for e in report.episodes for v in e.inference_ms]
    e2e = [v for e in report.episodes for v in e.end_to_end_ms]
    fig, (series, hist) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    series.plot(inference, lw=0.8, label="inference (model)")
    series.plot(e2e, lw=0.8, label="observation -> chunk published")
    series.set_xlabel("chunk")
    series.set_ylabel("ms")
    series.set_title("latency per chunk")
    series.legend()
    bins = 40
    hist.hist(inference, bins=bins, alpha=0.6, label="inference")
    hist.hist(e2e, bins=bins, alpha=0.6, label="observation -> chunk")
    stats = report.inference_ms()
    for q, style in (("p50", "-"), ("p99", "--")):
        hist.axvline(stats[q], color="k", ls=style, lw=1, label=f"inference {q} {stats[q]:.0f} ms")
    hist.set_xlabel("ms")
    hist.set_title("distribution")
    hist.legend(fontsize=8)
    fig.suptitle(f"RynnVLA policy node on the simulated arm ({len(inference)} chunks)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rynnvla-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the shipped one)")
    parser.add_argument(
        "--episodes", default=DEFAULT_EPISODES, help=f"per task (default {DEFAULT_EPISODES})"
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output dir (default {DEFAULT_OUT})")
    parser.add_argument("--timeout", type=float, default=25.0, help="sim seconds per episode")
    parser.add_argument("--seed-start", type=int, default=None, help="first layout seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> dict:
    from rynnvla_training.evaluate.config import DEFAULT_SEED_START, EvalConfig, parse_episodes
    from rynnvla_training.evaluate.runner import RESULTS_FILE, evaluate

    checkpoint = find_checkpoint(args.checkpoint)
    out = Path(args.out)
    config = EvalConfig(
        checkpoint=checkpoint,
        episodes=parse_episodes(args.episodes),
        out_dir=out,
        seed_start=DEFAULT_SEED_START if args.seed_start is None else args.seed_start,
        timeout_s=args.timeout,
        videos_per_task=1,
        progress=not args.quiet,
    )
    print(f"rynnvla-demo: checkpoint {checkpoint}", flush=True)
    report = evaluate(config, log=lambda text: print(text, flush=True))
    plot = latency_plot(report, out / PLOT_FILE)
    print(report.table())
    for video in report.videos:
        print(f"rollout video: {video}")
    print(f"latency plot: {plot}")
    print(f"results: {out / RESULTS_FILE}")
    e2e = report.end_to_end_ms()
    line = report.summary_line(out / RESULTS_FILE)
    line.update(
        {
            "end_to_end_p50_ms": e2e["p50"],
            "end_to_end_p99_ms": e2e["p99"],
            "videos": report.videos,
            "latency_plot": str(plot),
            "checkpoint": str(checkpoint),
        }
    )
    return line


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    from rynnvla_bringup.composed import ComposedSystemError
    from rynnvla_bringup.params import ParamsLayerError
    from rynnvla_training.evaluate.config import EvalConfigError
    from rynnvla_training.evaluate.runner import EvalAbortedError

    try:
        line = run(args)
    except (DemoError, EvalConfigError, ComposedSystemError, ParamsLayerError) as exc:
        print(f"rynnvla-demo: {exc}", file=sys.stderr)
        return 2
    except EvalAbortedError as exc:
        print(f"rynnvla-demo: aborted: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rynnvla-demo: interrupted", file=sys.stderr)
        return 130
    line["demo_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
