"""Fixtures for the stage tests: a LeRobot v3 dataset made by the real converter from synthetic
rosbag2 recordings, human-hand clips made by the simulator, and a helper that runs a stage
in-process and measures its loss on a fixed batch before and after training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from rynnvla_training.data.sampling import SampleKey
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.parts import TrainingParts
from rynnvla_training.train.rng import seed_everything
from rynnvla_training.train.stages import STAGES, resolve_config
from rynnvla_training.train.trainer import Trainer, TrainResult

SINGLE = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
# Quiet, fast defaults for every test run (no tqdm, no TensorBoard, no DataLoader workers).
QUIET = ["log.progress_bar=false", "log.tensorboard=false", "loop.num_workers=0"]


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


@dataclass
class StageRun:
    parts: TrainingParts
    result: TrainResult
    loss_before: float
    loss_after: float
    config: object

    @property
    def final(self) -> Path:
        """The stage's exported product (`<output_dir>/final`)."""
        return Path(self.result.export)


def fixed_batch_loss(parts: TrainingParts, size: int = 4) -> float:
    """Loss of the model in eval mode on the dataset's first `size` samples (fixed seeds)."""
    samples = [parts.dataset[SampleKey(i % len(parts.dataset), i, 1000 + i)] for i in range(size)]
    model = parts.model
    was_training = model.training
    model.eval()
    with torch.no_grad():
        loss, _ = model(parts.collate(samples))
    model.train(was_training)
    return float(loss)


def run_stage(stage: str, output_dir: Path, assignments: list[str]) -> StageRun:
    config = resolve_config(stage, "tiny", (), [*QUIET, f"output_dir={output_dir}", *assignments])
    seed_everything(config.loop.seed)
    parts = STAGES.get(stage).build(config, SINGLE)
    before = fixed_batch_loss(parts)
    result = Trainer(config, parts, SINGLE).fit()
    return StageRun(parts, result, before, fixed_batch_loss(parts), config)
