"""Run a stage in-process the way the CLI does, measuring its loss on a fixed batch before and
after training (deterministic: eval mode, fixed sample seeds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


def fixed_batch_loss(parts: TrainingParts, size: int = 8) -> float:
    """Loss of the model in eval mode on `size` samples spread over the dataset (fixed seeds)."""
    indices = np.linspace(0, len(parts.dataset) - 1, size).round().astype(int)
    samples = [parts.dataset[SampleKey(int(i), -1, 1000 + n)] for n, i in enumerate(indices)]
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
