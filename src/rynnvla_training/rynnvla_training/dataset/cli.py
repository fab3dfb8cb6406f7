"""``rynnvla-dataset``: inspect LeRobotDataset v3.0 directories.

rynnvla-dataset info DATASET                  # episodes, frames, fps, features, tasks
rynnvla-dataset preview DATASET -e 3 -o ep3.png
rynnvla-dataset validate DATASET [--decode]   # exit 1 when problems are found
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .reader import DatasetError, LeRobotV3Dataset


def _info(args: argparse.Namespace) -> int:
    dataset = LeRobotV3Dataset(args.dataset, load_images=False)
    info = dataset.info
    print(f"dataset   {dataset.root}")
    print(f"format    LeRobotDataset {info['codebase_version']}, robot {info.get('robot_type')}")
    print(f"episodes  {info['total_episodes']}   frames {info['total_frames']}   fps {dataset.fps}")
    seconds = info["total_frames"] / dataset.fps
    print(f"duration  {seconds:.1f} s ({seconds / 60:.1f} min)")
    print(f"splits    {info.get('splits', {})}")
    print("features")
    for key, feature in dataset.features.items():
        extra = ""
        if feature["dtype"] == "video":
            extra = f" {feature['info'].get('video.codec')}"
        names = feature.get("names")
        print(f"  {key:<28} {feature['dtype']:<8} {feature['shape']}{extra} {names or ''}")
    print("tasks")
    for index, task in enumerate(dataset.tasks):
        episodes = sum(1 for e in dataset.episode_indices if dataset.episode(e).task_index == index)
        print(f"  [{index}] {task!r} ({episodes} episodes)")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from .preview import write_preview

    dataset = LeRobotV3Dataset(args.dataset, episodes=[args.episode], load_images=False)
    output = args.output or Path(f"episode_{args.episode:04d}_preview.png")
    path = write_preview(dataset, args.episode, output, columns=args.columns)
    print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .validate import validate

    problems = validate(args.dataset, decode_videos=args.decode)
    for problem in problems:
        print(f"PROBLEM  {problem}")
    if problems:
        print(f"{args.dataset}: {len(problems)} problem(s)")
        return 1
    print(f"{args.dataset}: valid LeRobotDataset v3.0")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rynnvla-dataset", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="episodes, frames, fps, features, tasks")
    info.add_argument("dataset", type=Path)
    info.set_defaults(run=_info)
    preview = commands.add_parser("preview", help="PNG contact sheet + state/action curves")
    preview.add_argument("dataset", type=Path)
    preview.add_argument("-e", "--episode", type=int, default=0)
    preview.add_argument("-o", "--output", type=Path)
    preview.add_argument("--columns", type=int, default=8, help="frames per camera row")
    preview.set_defaults(run=_preview)
    check = commands.add_parser("validate", help="check the layout, metadata and videos")
    check.add_argument("dataset", type=Path)
    check.add_argument("--decode", action="store_true", help="decode every video frame")
    check.set_defaults(run=_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except DatasetError as exc:
        print(f"rynnvla-dataset: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
