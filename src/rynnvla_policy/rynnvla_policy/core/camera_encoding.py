"""VQ encoding of one observation's cameras: batched, one at a time, or on two CPU cores.

The image tokenizer is a small convolutional network: with two intra-op threads on a 2-core CPU
its many small kernels (group norms, activations, 8x10-pixel convolutions) spend much of their
time waking and joining OpenMP workers. Cameras are independent, so on CPU the fast path gives
each of two threads its own share of the cameras, each with half the intra-op threads: the two
encoders run side by side and never synchronise inside a kernel. On GPU (asynchronous kernels)
and with a single intra-op thread the cameras are batched instead.

In the split mode every camera is its own batch of one, as in the reference (and
``PolicyRunner.infer_naive``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from .image_tokenizer import ImageTokenizer


class CameraEncoder:
    """``encode(pixels)``: list of (3, h, w) pixel tensors -> list of (gh, gw) CPU code grids."""

    def __init__(self, tokenizer: ImageTokenizer, device: torch.device) -> None:
        self.tokenizer = tokenizer
        self.device = device
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # one split encode at a time (thread counts are global)

    # ---- modes ---------------------------------------------------------------------------------
    def encode(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """The fastest mode for this device and thread budget (same codes in every mode)."""
        threads = torch.get_num_threads()
        if self.device.type != "cpu" or threads < 2 or len(pixels) < 2:
            return self.encode_batched(pixels)
        return self.encode_split(pixels, threads)

    def encode_each(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """One camera at a time, each a batch of one (the reference's way)."""
        return [self._encode_one(p) for p in pixels]

    def encode_batched(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Cameras with equal crop sizes go through the encoder together."""
        codes: list[torch.Tensor | None] = [None] * len(pixels)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, p in enumerate(pixels):
            by_shape.setdefault(tuple(p.shape), []).append(index)
        for indices in by_shape.values():
            stacked = torch.stack([pixels[i] for i in indices]).to(self.device)
            for i, grid in zip(indices, self.tokenizer.encode(stacked).cpu(), strict=True):
                codes[i] = grid
        return codes  # type: ignore[return-value]

    def encode_split(self, pixels: list[torch.Tensor], threads: int) -> list[torch.Tensor]:
        """Cameras shared between the calling thread and one worker thread, each running its
        kernels on ``threads // 2`` intra-op threads; the thread count is restored after."""
        mine, theirs = _balanced_halves(pixels)
        with self._lock:
            torch.set_num_threads(threads // 2)
            try:
                future = self._worker().submit(self._encode_in_worker, pixels, theirs, threads // 2)
                try:
                    own = {i: self._encode_one(pixels[i]) for i in mine}
                finally:
                    other = future.result()  # joined even when our half failed
            finally:
                torch.set_num_threads(threads)
        codes = {**own, **other}
        return [codes[i] for i in range(len(pixels))]

    def close(self) -> None:
        """Stop the worker thread (a later split encode starts a new one)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # ---- helpers -------------------------------------------------------------------------------
    def _worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rynnvla-vq")
        return self._pool

    def _encode_one(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.encode(pixels[None].to(self.device))[0].cpu()  # (gh, gw)

    def _encode_in_worker(
        self, pixels: list[torch.Tensor], indices: list[int], threads: int
    ) -> dict[int, torch.Tensor]:
        # Inference mode, and OpenMP's and MKL's thread counts, are per thread: set them here.
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return {i: self._encode_one(pixels[i]) for i in indices}


def _balanced_halves(pixels: list[torch.Tensor]) -> tuple[list[int], list[int]]:
    """Camera indices for the calling thread and the worker, balanced by pixel count (greedy,
    largest first); the calling thread takes the first camera."""
    order = sorted(range(len(pixels)), key=lambda i: -pixels[i].numel())
    halves: tuple[list[int], list[int]] = ([], [])
    loads = [0, 0]
    for i in order:
        side = 0 if loads[0] <= loads[1] else 1
        halves[side].append(i)
        loads[side] += pixels[i].numel()
    return halves
