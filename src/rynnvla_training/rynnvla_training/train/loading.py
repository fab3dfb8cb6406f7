"""DataLoader plumbing shared by every stage: keys travel with samples (batch ids for error
messages), tensors move to the device, workers get distinct but reproducible seeds."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rynnvla_training.data.sampling import SampleKey


class KeyedDataset(Dataset):
    """`dataset[key] -> (key, sample)`, so the collated batch still knows its SampleKeys."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> tuple[SampleKey, Any]:
        return key, self.dataset[key]


class KeyedCollate:
    """`[(key, sample), ...] -> (keys, collate(samples))` (a class so workers can pickle it)."""

    def __init__(self, collate: Callable[[list[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, items: list[tuple[SampleKey, Any]]) -> tuple[tuple[SampleKey, ...], Any]:
        keys = tuple(key for key, _ in items)
        return keys, self.collate([sample for _, sample in items])


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in nested dicts / lists / tuples to `device`; everything else unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


def seed_worker(worker_id: int) -> None:
    """Seed numpy / python in each worker from torch's per-worker seed. Sample content does
    not depend on it (each SampleKey carries its own seed); this only keeps stray library
    randomness distinct between workers."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
