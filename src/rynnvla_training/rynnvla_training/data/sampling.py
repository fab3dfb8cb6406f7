"""A resumable, rank-aware sample stream.

The stream is the concatenation of per-epoch permutations of the dataset. Optimiser step `s`
consumes stream positions `[s * G, (s + 1) * G)` with `G = micro_batch * grad_accum * world`;
rank `r` takes contiguous slices of it. So the data a step sees depends only on the step number
(never on how many ranks or accumulation steps split it, nor on DataLoader workers), and a
resumed run restarts exactly at `start_step`. Each draw carries its own augmentation seed, so
random augmentation is reproducible across workers and resumes too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler


@dataclass(frozen=True)
class SampleKey:
    """What a training dataset's `__getitem__` receives."""

    index: int  # dataset index
    position: int  # position in the global sample stream (unique per draw: the batch id)
    seed: int  # seed for this draw's random choices (augmentation, window offsets)

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@dataclass(frozen=True)
class StreamLayout:
    """Batch geometry: how one optimiser step's global batch is split."""

    micro_batch: int
    grad_accum: int
    world_size: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size

    def positions(self, step: int, accum_index: int, rank: int) -> range:
        """Stream positions of one micro-batch of `rank` at `step`."""
        start = step * self.global_batch + (accum_index * self.world_size + rank) * self.micro_batch
        return range(start, start + self.micro_batch)


class StreamSampler(Sampler[SampleKey]):
    """Yields the SampleKeys of `rank` for steps `[start_step, max_steps)` in order."""

    def __init__(
        self,
        dataset_size: int,
        layout: StreamLayout,
        *,
        rank: int,
        seed: int,
        shuffle: bool,
        start_step: int,
        max_steps: int,
    ) -> None:
        if dataset_size < 1:
            raise ValueError(f"dataset_size={dataset_size}: the training dataset is empty")
        if not 0 <= rank < layout.world_size:
            raise ValueError(f"rank={rank} outside world_size={layout.world_size}")
        if not 0 <= start_step <= max_steps:
            raise ValueError(f"start_step={start_step} outside [0, max_steps={max_steps}]")
        self.dataset_size = dataset_size
        self.layout = layout
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.start_step = start_step
        self.max_steps = max_steps
        self._epoch = -1
        self._order = np.arange(dataset_size)

    def __len__(self) -> int:
        steps = self.max_steps - self.start_step
        return steps * self.layout.grad_accum * self.layout.micro_batch

    def __iter__(self) -> Iterator[SampleKey]:
        for step in range(self.start_step, self.max_steps):
            for accum_index in range(self.layout.grad_accum):
                for position in self.layout.positions(step, accum_index, self.rank):
                    yield self.key(position)

    def key(self, position: int) -> SampleKey:
        epoch, offset = divmod(position, self.dataset_size)
        return SampleKey(
            index=int(self._epoch_order(epoch)[offset]),
            position=position,
            seed=int(np.random.SeedSequence([self.seed, position]).generate_state(1)[0]),
        )

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            if self.shuffle:
                self._order = np.random.default_rng([self.seed, epoch]).permutation(
                    self.dataset_size
                )
        return self._order
