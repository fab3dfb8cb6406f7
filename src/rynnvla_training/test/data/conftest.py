"""Fixtures of the data-layer tests: a small LeRobot v3 dataset from the real converter and
simulator hand clips (the same generators as the trainer tests, smaller)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """2 episodes of 1.5 s (different tasks), cameras front + wrist at 48x64."""
    from rynnvla_training.convert.config import ConvertConfig
    from rynnvla_training.convert.pipeline import run_conversion
    from rynnvla_training.convert.synthetic import RecordingSpec, write_recording

    root = tmp_path_factory.mktemp("small_robot")
    tasks = ("put the green block on the plate", "put the strawberry in the bowl")
    for index, task in enumerate(tasks):
        spec = RecordingSpec(duration_s=1.5, seed=10 + index, instructions=((0.0, task),))
        write_recording(root / "bags" / f"episode_{index}", spec)
    result = run_conversion(
        [root / "bags"], root / "dataset", ConvertConfig(), workers=1, progress=False
    )
    return result.output


@pytest.fixture(scope="session")
def small_manifest(tmp_path_factory) -> Path:
    """2 hand clips at 64x48, 10 fps."""
    from rynnvla_sim.human_videos import build_parser, generate

    out = tmp_path_factory.mktemp("small_human")
    generate(
        build_parser().parse_args(
            ["--clips", "2", "--out", str(out), "--fps", "10", "--size", "64x48"]
        ),
        progress=False,
    )
    return out / "manifest.jsonl"
