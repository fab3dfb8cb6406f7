"""``rynnvla-convert``: rosbag2 recordings -> LeRobotDataset v3.0 (stage-3 training data).

    rynnvla-convert recordings/ -o datasets/pick --config my_robot.yaml --task "pick it up"
    rynnvla-convert bag_a bag_b -o out --val-fraction 0.1 --workers 2 --overwrite
    rynnvla-convert --print-config > my_robot.yaml      # the defaults, to edit

Exit status: 0 = dataset written (some bags may have been skipped: see the summary and
meta/rynnvla_conversion_report.json), 1 = no dataset, 2 = bad arguments or config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .bag import BagError
from .config import ConfigError, ConvertConfig
from .pipeline import ConversionError, ConversionResult, run_conversion
from .sync_report import format_sync_line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rynnvla-convert",
        description="Convert rosbag2 recordings (sqlite3 / MCAP, any ROS 2 distro) into a "
        "LeRobotDataset v3.0 with the statistics RynnVLA training needs. No ROS install needed.",
    )
    parser.add_argument("inputs", nargs="*", help="bag directories, or folders holding bags")
    parser.add_argument("-o", "--output", help="dataset directory to create")
    parser.add_argument("-c", "--config", help="mapping YAML (overrides the defaults)")
    parser.add_argument("--task", help="task text for every episode (else: instruction topic)")
    parser.add_argument("--fps", type=int, help="output frame rate (default from config: 30)")
    parser.add_argument("--val-fraction", type=float, help="fraction of episodes for 'val'")
    parser.add_argument(
        "--split-on-instruction",
        action="store_true",
        default=None,
        help="start a new episode whenever the instruction changes",
    )
    parser.add_argument("--codec", choices=("h264", "av1"), help="video codec (default h264)")
    parser.add_argument("--workers", type=int, help="parallel worker processes (default: cores)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--keep-staging",
        action="store_true",
        help="keep converted episodes for a later incremental run",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true", help="print every episode's sync")
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective config as YAML and exit"
    )
    return parser  # fmt: skip


def _config(args: argparse.Namespace) -> ConvertConfig:
    config = ConvertConfig.from_yaml(args.config)
    data = config.to_dict()
    if args.task is not None:
        data["task"] = args.task
    if args.fps is not None:
        data["fps"] = args.fps
    if args.val_fraction is not None:
        data["split"]["val_fraction"] = args.val_fraction
    if args.split_on_instruction:
        data["instruction"]["split_episodes"] = True
    if args.codec is not None:
        data["video"]["codec"] = args.codec
    return ConvertConfig.from_dict(data)


def _print_summary(result: ConversionResult, verbose: bool) -> None:
    report = result.report
    if result.up_to_date:
        print(f"{result.output} is up to date ({result.episodes} episodes); nothing to do")
        return
    for bag in report["bags"]:
        name = Path(bag["bag"]).name
        if bag["error"]:
            print(f"SKIPPED  {name}: {bag['error']}")
            continue
        for dropped in bag["dropped_segments"]:
            print(f"note     {name}: {dropped['reason']}")
    for skipped in report["skipped_segments"]:
        print(f"SKIPPED  {Path(skipped['bag']).name}/{skipped['segment']}: {skipped['reason']}")
    for episode in report["episodes"]:
        name = Path(episode["source"]).name
        print(
            f"episode {episode['episode_index']:>4} {episode['split']:<5} {name} "
            f"{episode['length']} frames, match {100 * episode['match_rate']:.1f}%, "
            f"task {episode['task']!r}"
        )
        if verbose:
            for stream, sync in episode["sync"].items():
                print("    " + format_sync_line(stream, sync))
    skipped = sum(1 for b in report["bags"] if b["error"])
    print(
        f"wrote {result.output}: {result.episodes} episodes, {result.frames} frames, "
        f"{skipped} of {len(report['bags'])} bags skipped (report: meta/"
        "rynnvla_conversion_report.json)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"rynnvla-convert: config error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    if not args.inputs or not args.output:
        print("rynnvla-convert: give input bags and -o OUTPUT (see --help)", file=sys.stderr)
        return 2
    try:
        result = run_conversion(
            args.inputs,
            args.output,
            config,
            workers=args.workers,
            overwrite=args.overwrite,
            keep_staging=args.keep_staging,
            progress=not args.quiet,
        )
    except BagError as exc:
        print(f"rynnvla-convert: {exc}", file=sys.stderr)
        return 2
    except ConversionError as exc:
        print(f"rynnvla-convert: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rynnvla-convert: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    _print_summary(result, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
