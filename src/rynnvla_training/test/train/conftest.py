"""Fixtures of the trainer tests: a LeRobot v3 dataset made by the real converter from
synthetic rosbag2 recordings, and human-hand clips made by the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: on the shared 2-core CI machine, 2 spinning OpenMP threads per
    process were measured 5-10x slower than 1 when other processes compete for the cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def converted_dataset(tmp_path_factory) -> Path:
    """3 episodes (2 tasks), two 48x64 cameras, converted by `rynnvla-convert`'s pipeline."""
    from rynnvla_training.convert.config import ConvertConfig
    from rynnvla_training.convert.pipeline import run_conversion
    from rynnvla_training.convert.synthetic import RecordingSpec, write_recording

    root = tmp_path_factory.mktemp("robot")
    tasks = ("put the green block on the plate", "put the pen in the pen holder")
    for index in range(3):
        spec = RecordingSpec(duration_s=2.5, seed=index, instructions=((0.0, tasks[index % 2]),))
        write_recording(root / "bags" / f"episode_{index}", spec)
    result = run_conversion(
        [root / "bags"], root / "dataset", ConvertConfig(), workers=1, progress=False
    )
    return result.output


@pytest.fixture(scope="session")
def human_manifest(tmp_path_factory) -> Path:
    """3 ego-centric hand clips (64x48, 10 fps) from `rynnvla-sim-humanvideos`."""
    from rynnvla_sim.human_videos import build_parser, generate

    out = tmp_path_factory.mktemp("human")
    args = build_parser().parse_args(
        ["--clips", "3", "--out", str(out), "--fps", "10", "--size", "64x48"]
    )
    generate(args, progress=False)
    return out / "manifest.jsonl"
