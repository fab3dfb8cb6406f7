"""Batching of sample dicts: arrays/tensors are stacked, everything else is kept as a list."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rynnvla_training.data.sampling import SampleKey


def stack_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """[{k: (…)}, ...] -> {k: (B, …)}; non-array values (token id lists, text) -> lists."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        first = values[0]
        if isinstance(first, torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(first, np.ndarray):
            batch[key] = torch.from_numpy(np.stack(values))
        else:
            batch[key] = values
    return batch


class ConcatKeyed(Dataset):
    """Several SampleKey datasets as one (torch's ConcatDataset wants int indices)."""

    def __init__(self, datasets: list[Dataset]) -> None:
        if not datasets:
            raise ValueError("ConcatKeyed needs at least one dataset")
        self.datasets = datasets
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, key: SampleKey) -> Any:
        which = int(np.searchsorted(self.offsets, key.index, side="right") - 1)
        local = SampleKey(key.index - int(self.offsets[which]), key.position, key.seed)
        return self.datasets[which][local]
