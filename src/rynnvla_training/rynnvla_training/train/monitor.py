"""What a person watching a run sees: tqdm bar, TensorBoard scalars and images, throughput."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from rynnvla_training.train.config import LogConfig


class Throughput:
    """Samples per second over a window, and over the whole run after its first step (which
    includes one-off costs: worker start-up, first video decodes, allocator warm-up)."""

    def __init__(self) -> None:
        self._window_start = time.perf_counter()
        self._window_samples = 0
        self._run_start: float | None = None
        self._run_samples = 0

    def add(self, samples: int) -> None:
        now = time.perf_counter()
        self._window_samples += samples
        if self._run_start is None:
            self._run_start = now  # the clock starts after the first step
        else:
            self._run_samples += samples
        self._last = now

    def window_rate(self) -> float:
        elapsed = time.perf_counter() - self._window_start
        rate = self._window_samples / elapsed if elapsed > 0 else 0.0
        self._window_start, self._window_samples = time.perf_counter(), 0
        return rate

    def run_rate(self) -> float:
        if self._run_start is None or self._run_samples == 0:
            return 0.0
        return self._run_samples / max(self._last - self._run_start, 1e-9)


class RunMonitor:
    """Rank 0 writes; other ranks get a silent monitor."""

    def __init__(
        self, output_dir: Path, config: LogConfig, *, enabled: bool, start_step: int, max_steps: int
    ) -> None:
        self.config = config
        self.enabled = enabled
        self.throughput = Throughput()
        self._bar = None
        self._writer = None
        self._interactive = True
        if not enabled:
            return
        self._interactive = sys.stderr.isatty()
        if config.progress_bar and self._interactive:
            self._bar = tqdm(total=max_steps, initial=start_step, desc="train", unit="step")
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(output_dir / "tensorboard"))

    def step_done(self, step: int, samples: int) -> None:
        self.throughput.add(samples)
        if self._bar is not None:
            self._bar.update(1)

    def log_scalars(self, step: int, metrics: dict[str, float], lr: float) -> float:
        """Write the window's scalars; returns the window's samples/s."""
        rate = self.throughput.window_rate()
        if not self.enabled:
            return rate
        loss = metrics.get("loss", float("nan"))
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", sps=f"{rate:.1f}")
        if not self._interactive:
            # Piped into a log: one plain line per window instead of a redrawn bar.
            terms = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
            self.write(f"step {step}: {terms} lr={lr:.3g} samples_per_s={rate:.2f}")
        if self._writer is not None:
            for name, value in metrics.items():
                self._writer.add_scalar(f"train/{name}", value, step)
            self._writer.add_scalar("train/lr", lr, step)
            self._writer.add_scalar("train/samples_per_s", rate, step)
        return rate

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """`image`: (H, W, 3) uint8."""
        if self._writer is not None:
            self._writer.add_image(tag, image, step, dataformats="HWC")

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._writer is not None:
            if summary:
                for name, value in summary.items():
                    if isinstance(value, int | float):
                        self._writer.add_scalar(f"summary/{name}", value, 0)
            self._writer.close()
