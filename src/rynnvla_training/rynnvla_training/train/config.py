"""Stage-independent training configuration.

`TrainConfig` is the whole run: the generic blocks below (optimiser, loop, checkpoints,
distribution, logging) plus a stage-specific `model` and `data` block (dataclasses defined by
each stage in `train/stages/`). Every field is documented here once; YAML files and
`--set key=value` only override fields (see `config_tree.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def check(condition: bool, name: str, value: Any, expectation: str) -> None:
    """Raise ValueError naming the field and the value when `condition` is false."""
    if not condition:
        raise ValueError(f"{name}={value!r}: {expectation}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and the learning-rate schedule."""

    lr: float = 1e-4  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1  # decoupled (AdamW); not applied to 1-D params (biases, norms)
    grad_clip: float = 4.0  # max global gradient L2 norm; 0 disables clipping
    warmup_steps: int = 0  # linear warm-up from 0 to `lr`
    schedule: str = "constant"  # "constant" or "cosine" (decays to lr * min_lr_ratio)
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        check(self.lr > 0, "optim.lr", self.lr, "must be > 0")
        check(all(0 <= b < 1 for b in self.betas), "optim.betas", self.betas, "each in [0, 1)")
        check(self.eps > 0, "optim.eps", self.eps, "must be > 0")
        check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "must be >= 0")
        check(self.grad_clip >= 0, "optim.grad_clip", self.grad_clip, "must be >= 0")
        check(self.warmup_steps >= 0, "optim.warmup_steps", self.warmup_steps, "must be >= 0")
        check(
            self.schedule in ("constant", "cosine"),
            "optim.schedule",
            self.schedule,
            "must be 'constant' or 'cosine'",
        )
        check(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio", self.min_lr_ratio, "in [0, 1]")


@dataclass(frozen=True)
class LoopConfig:
    """Steps, batch geometry and data loading.

    The global batch of one optimiser step is
    `micro_batch_size * grad_accum_steps * world_size`; the sample stream is the same for any
    split of it, so 2 ranks x 2 samples equals 1 rank x 4 samples.
    """

    max_steps: int = 100  # optimiser steps
    micro_batch_size: int = 2  # samples per rank per forward pass
    grad_accum_steps: int = 1  # forward/backward passes per optimiser step
    num_workers: int = 0  # DataLoader worker processes per rank
    prefetch_factor: int = 2  # batches prefetched per worker (ignored without workers)
    seed: int = 0  # model init, data order and augmentation all derive from it
    shuffle: bool = True

    def __post_init__(self) -> None:
        check(self.max_steps >= 1, "loop.max_steps", self.max_steps, "must be >= 1")
        check(self.micro_batch_size >= 1, "loop.micro_batch_size", self.micro_batch_size, ">= 1")
        check(self.grad_accum_steps >= 1, "loop.grad_accum_steps", self.grad_accum_steps, ">= 1")
        check(self.num_workers >= 0, "loop.num_workers", self.num_workers, "must be >= 0")
        check(self.prefetch_factor >= 1, "loop.prefetch_factor", self.prefetch_factor, ">= 1")


@dataclass(frozen=True)
class CheckpointConfig:
    """Training-state checkpoints under `<output_dir>/checkpoints/step_XXXXXXXX/`."""

    every_steps: int = 500  # 0: only at the end
    keep_last: int = 2  # older complete checkpoints are deleted
    resume: str = "auto"  # "auto" (latest in output_dir if any), "never", or a checkpoint path
    save_final: bool = True  # also save the training state after the last step
    export_each: bool = False  # each checkpoint also holds the stage's product in <step>/final
    # (stage 3: a policy `rynnvla-eval --direct` can load), to compare checkpoints

    def __post_init__(self) -> None:
        check(self.every_steps >= 0, "checkpoint.every_steps", self.every_steps, ">= 0")
        check(self.keep_last >= 1, "checkpoint.keep_last", self.keep_last, "must be >= 1")
        check(bool(self.resume), "checkpoint.resume", self.resume, "'auto', 'never' or a path")


@dataclass(frozen=True)
class DistConfig:
    """How the model is spread over processes (launched by torchrun or as a single process)."""

    strategy: str = "auto"  # "auto", "single", "ddp" or "fsdp"; auto: fsdp for large models
    fsdp_min_params: int = 500_000_000  # auto picks fsdp at or above this many parameters
    backend: str = "auto"  # "auto" (nccl on CUDA, else gloo), "gloo" or "nccl"
    precision: str = "fp32"  # "fp32" or "bf16" (autocast for single/ddp; FSDP param dtype)
    activation_checkpointing: bool = False  # recompute transformer blocks in backward
    # torch.compile each transformer block (dynamic shapes): fewer, fused kernels; pays a
    # compile at the first steps (~35 s for the tiny preset on 2 CPU cores)
    compile_blocks: bool = False
    device: str = "auto"  # "auto" (cuda:<local_rank> when available, else cpu), "cpu", "cuda"

    def __post_init__(self) -> None:
        check(
            self.strategy in ("auto", "single", "ddp", "fsdp"),
            "dist.strategy",
            self.strategy,
            "must be 'auto', 'single', 'ddp' or 'fsdp'",
        )
        check(
            self.backend in ("auto", "gloo", "nccl"),
            "dist.backend",
            self.backend,
            "must be 'auto', 'gloo' or 'nccl'",
        )
        check(self.precision in ("fp32", "bf16"), "dist.precision", self.precision, "fp32|bf16")
        check(self.device in ("auto", "cpu", "cuda"), "dist.device", self.device, "auto|cpu|cuda")
        check(self.fsdp_min_params >= 0, "dist.fsdp_min_params", self.fsdp_min_params, ">= 0")


@dataclass(frozen=True)
class LogConfig:
    """Progress bar, TensorBoard scalars and preview images."""

    every_steps: int = 10  # TensorBoard scalars and progress-bar refresh
    tensorboard: bool = True  # event files under <output_dir>/tensorboard
    progress_bar: bool = True  # on a terminal; piped output gets one line per log window
    preview_every_steps: int = 0  # predicted-vs-true frame PNGs (stages 1-3); 0 disables

    def __post_init__(self) -> None:
        check(self.every_steps >= 1, "log.every_steps", self.every_steps, "must be >= 1")
        check(
            self.preview_every_steps >= 0,
            "log.preview_every_steps",
            self.preview_every_steps,
            "must be >= 0",
        )


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `model` and `data` are the stage's own config dataclasses."""

    stage: str  # "vqgan", "vae", "stage1", "stage2" or "stage3"
    model: Any  # stage-specific model block (see train/stages/<stage>.py)
    data: Any  # stage-specific data block
    output_dir: str = "runs/train"  # checkpoints, tensorboard, previews and the final export
    init: str = ""  # weights to start from: a previous stage's output or a released checkpoint
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        check(bool(self.output_dir), "output_dir", self.output_dir, "must not be empty")
