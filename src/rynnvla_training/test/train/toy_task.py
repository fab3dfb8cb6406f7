"""A small real regression task for testing the stage-independent trainer: an MLP with the
`forward(batch) -> (loss, metrics)` training API and a generated dataset of SampleKeys.
Also runnable under torchrun: `python -m torch.distributed.run ... toy_task.py OUT JSON`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from rynnvla_training.data.sampling import SampleKey
from rynnvla_training.train.config import (
    CheckpointConfig,
    LogConfig,
    LoopConfig,
    OptimConfig,
    TrainConfig,
)
from rynnvla_training.train.config_tree import apply_overrides
from rynnvla_training.train.parts import TrainingParts


class ToyRegression(nn.Module):
    def __init__(self, dropout: float = 0.0, blocks: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Dropout(dropout)) for _ in range(blocks)
        )
        self.out = nn.Linear(16, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        hidden = self.inp(batch["x"])  # (B, 16)
        for block in self.blocks:
            hidden = hidden + block(hidden)
        prediction = self.out(hidden)  # (B, 2)
        loss = (prediction - batch["y"]).pow(2).mean()
        return loss, {"mse": loss.detach(), "pred_abs": prediction.abs().mean().detach()}


class ToyDataset(Dataset):
    """y = A x with fixed A; x gets per-draw noise from the SampleKey (augmentation)."""

    def __init__(self, size: int = 32, nan_index: int = -1) -> None:
        generator = torch.Generator().manual_seed(1234)
        self.x = torch.randn(size, 4, generator=generator)
        self.matrix = torch.randn(4, 2, generator=generator)
        self.nan_index = nan_index

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        noise = torch.from_numpy(key.rng().normal(0.0, 0.01, size=4)).float()
        x = self.x[key.index] + noise
        if key.index == self.nan_index:
            x = torch.full_like(x, float("nan"))
        return {"x": x, "y": self.x[key.index] @ self.matrix}


def toy_config(output_dir: Path, **overrides: Any) -> TrainConfig:
    config = TrainConfig(
        stage="toy",
        model={},
        data={},
        output_dir=str(output_dir),
        optim=OptimConfig(lr=1e-2, weight_decay=0.01, warmup_steps=1, schedule="cosine"),
        loop=LoopConfig(max_steps=4, micro_batch_size=4, seed=7),
        checkpoint=CheckpointConfig(every_steps=0, keep_last=2),
        log=LogConfig(every_steps=1, tensorboard=False, progress_bar=False),
    )
    return apply_overrides(config, overrides)


def toy_parts(dropout: float = 0.0, nan_index: int = -1, seed: int = 7) -> TrainingParts:
    torch.manual_seed(seed)  # identical initial weights on every rank and every run
    return TrainingParts(
        model=ToyRegression(dropout=dropout),
        dataset=ToyDataset(nan_index=nan_index),
        collate=default_collate,
    )


def _main(output_dir: str, overrides_json: str) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from rynnvla_training.train.distributed import init_distributed, shutdown_distributed
    from rynnvla_training.train.trainer import Trainer

    overrides = json.loads(overrides_json)
    stop_at_step = overrides.pop("stop_at_step", None)
    config = toy_config(Path(output_dir), **overrides)
    context = init_distributed(config.dist)
    clean = False
    try:
        trainer = Trainer(config, toy_parts(), context)
        result = trainer.fit(stop_at_step=stop_at_step)
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(trainer.model, options=options)  # collective
        if context.is_main:
            summary = {
                "losses": result.losses,
                "state": {k: v.tolist() for k, v in state.items()},
                "strategy": result.strategy,
            }
            Path(output_dir, f"result_{result.steps}.json").write_text(json.dumps(summary))
        clean = True
    finally:
        shutdown_distributed(clean)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
