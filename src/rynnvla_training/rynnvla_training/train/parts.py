"""The contract between the one trainer and a stage: what a stage hands the trainer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import Dataset

# model(batch) -> (loss, metrics): the LeRobot-style training API every stage's model follows.
# A preview gets the (possibly wrapped) model and a batch on the device and returns an
# (H, W, 3) uint8 image of predicted vs true future frames; it runs on every rank (FSDP needs
# all ranks in the forward pass) and rank 0 writes it.
Preview = Callable[[nn.Module, dict[str, Any]], np.ndarray]
# export(full_model_state_dict, directory) -> directory: write the stage's product in our
# checkpoint format (rank 0 only, CPU tensors).
Export = Callable[[dict[str, Any], Path], Path]


@dataclass
class TrainingParts:
    model: nn.Module  # forward(batch) -> (loss: scalar tensor, metrics: dict[str, float|tensor])
    dataset: Dataset  # __getitem__(SampleKey) -> sample dict
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]]
    preview: Preview | None = None
    export: Export | None = None
    description: str = ""  # one line printed at start (dataset size, model size, ...)
