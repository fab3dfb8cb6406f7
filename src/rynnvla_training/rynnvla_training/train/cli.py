"""`rynnvla-train {vqgan,vae,stage1,stage2,stage3}`: one trainer, stages differ by config.

    rynnvla-train stage3 --preset tiny --config my_robot.yaml --set optim.lr=3e-4 \\
        --output-dir runs/stage3 --init runs/stage2/final
    torchrun --nproc_per_node 8 -m rynnvla_training.train.cli stage3 --preset rynnvla-7b ...

Ends by printing the final checkpoint path and one JSON line with the run's figures
(`samples_per_s`, `final_loss`, `steps`, `final_checkpoint`, `training_checkpoint`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from rynnvla_training.train.config_tree import ConfigError, to_dict
from rynnvla_training.train.distributed import init_distributed, shutdown_distributed
from rynnvla_training.train.guards import NonFiniteLossError
from rynnvla_training.train.rng import seed_everything
from rynnvla_training.train.stages import STAGES, preset_sizes, resolve_config
from rynnvla_training.train.trainer import Trainer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rynnvla-train", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name in STAGES:
        stage = STAGES.get(name)
        sub = commands.add_parser(name, help=stage.summary, description=stage.summary)
        sub.add_argument("--preset", help=f"one of {preset_sizes(name)} (default: tiny)")
        sub.add_argument(
            "--config",
            action="append",
            default=[],
            metavar="YAML",
            help="YAML overrides (repeatable, applied in order); may set `preset:`",
        )
        sub.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            dest="assignments",
            help="one field, e.g. --set optim.lr=1e-4 --set data.history_frames=2",
        )
        sub.add_argument("--output-dir", help="shorthand for --set output_dir=...")
        sub.add_argument("--init", help="weights to start from (shorthand for --set init=...)")
        sub.add_argument("--resume", help="'auto', 'never' or a checkpoint directory")
        sub.add_argument("--max-steps", type=int, help="shorthand for --set loop.max_steps=N")
        sub.add_argument(
            "--print-config", action="store_true", help="print the resolved config and exit"
        )
    return parser


def _shorthands(args: argparse.Namespace) -> dict:
    extra: dict = {}
    if args.output_dir:
        extra["output_dir"] = args.output_dir
    if args.init:
        extra["init"] = args.init
    if args.resume:
        extra["checkpoint"] = {"resume": args.resume}
    if args.max_steps is not None:
        extra["loop"] = {"max_steps": args.max_steps}
    return extra


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = resolve_config(
            args.stage, args.preset, args.config, args.assignments, extra=_shorthands(args)
        )
    except (ConfigError, KeyError, FileNotFoundError) as error:
        print(f"rynnvla-train {args.stage}: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False))
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    context = init_distributed(config.dist)
    code = 1  # an exception escaping _train: not a clean finish
    try:
        code = _train(config, context)
        return code
    finally:
        shutdown_distributed(clean=code == 0)


def _train(config, context) -> int:
    if context.is_main:
        output = Path(config.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        (output / "train_config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    seed_everything(config.loop.seed)
    try:
        parts = STAGES.get(config.stage).build(config, context)
    except (ValueError, FileNotFoundError, KeyError) as error:
        # Bad data paths, mismatched checkpoints, missing statistics: named in the message.
        print(f"rynnvla-train {config.stage}: {error}", file=sys.stderr)
        return 2
    try:
        result = Trainer(config, parts, context).fit()
    except NonFiniteLossError as error:
        if context.is_main:
            print(f"rynnvla-train {config.stage}: {error}", file=sys.stderr)
        return 3
    if context.is_main:
        final = result.export or result.checkpoint
        print(f"final checkpoint: {final}")
        summary = {
            "stage": config.stage,
            "steps": result.steps,
            "samples_seen": result.samples_seen,
            "samples_per_s": round(result.samples_per_s, 3),
            "final_loss": result.final_loss,
            "final_checkpoint": result.export,
            "training_checkpoint": result.checkpoint,
            "strategy": result.strategy,
            "world_size": context.world_size,
        }
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
