"""The one training loop, shared by every stage (the stage only supplies `TrainingParts`)."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.utils.data import DataLoader

from rynnvla_training.data.sampling import StreamLayout, StreamSampler
from rynnvla_training.train import checkpoint_io
from rynnvla_training.train.config import TrainConfig
from rynnvla_training.train.config_tree import to_dict
from rynnvla_training.train.distributed import DistContext, resolve_strategy, unwrap, wrap_model
from rynnvla_training.train.guards import BatchId, NonFiniteLossError, non_finite_loss_message
from rynnvla_training.train.loading import KeyedCollate, KeyedDataset, move_to_device, seed_worker
from rynnvla_training.train.monitor import RunMonitor
from rynnvla_training.train.optim import build_optimizer, build_scheduler
from rynnvla_training.train.parts import TrainingParts
from rynnvla_training.train.rng import seed_everything
from rynnvla_training.train.train_state import (
    Progress,
    load_training_state,
    save_training_state,
)

EXPORT_NAME = "final"  # the stage's product: <output_dir>/final, <checkpoint>/final


@dataclass
class TrainResult:
    steps: int  # optimiser steps completed in total (including before a resume)
    samples_seen: int
    samples_per_s: float  # this process's run, after its first step
    final_loss: float
    losses: list[float] = field(default_factory=list)  # global mean loss of each step run here
    checkpoint: str | None = None  # last training-state checkpoint
    export: str | None = None  # the stage's product in our checkpoint format
    strategy: str = "single"


@dataclass
class _StepStats:
    metrics: dict[str, float]  # global means over micro-batches and ranks
    bad: tuple[BatchId | None, float] | None  # first non-finite loss on this rank, if any
    any_bad: bool  # any rank saw a non-finite loss


class Trainer:
    def __init__(self, config: TrainConfig, parts: TrainingParts, context: DistContext) -> None:
        self.config = config
        self.parts = parts
        self.context = context
        self.output_dir = Path(config.output_dir)
        self.checkpoint_root = self.output_dir / "checkpoints"
        self.layout = StreamLayout(
            micro_batch=config.loop.micro_batch_size,
            grad_accum=config.loop.grad_accum_steps,
            world_size=context.world_size,
        )
        self.strategy = resolve_strategy(config.dist, context, parts.model)
        self.model = wrap_model(parts.model, self.strategy, context, config.dist)
        # Weights were built from the same seed on every rank; from here on each rank draws
        # its own dropout / sampling noise (a resume restores these streams exactly).
        seed_everything(config.loop.seed + 1 + context.rank)
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.loop.max_steps)
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------------ public
    def fit(self, stop_at_step: int | None = None) -> TrainResult:
        """Train to `loop.max_steps` (or stop early at `stop_at_step`, e.g. a time-boxed job
        slot: the schedule still spans max_steps and a later run resumes exactly)."""
        progress = self._resume()
        end_step = min(stop_at_step or self.config.loop.max_steps, self.config.loop.max_steps)
        monitor = RunMonitor(
            self.output_dir,
            self.config.log,
            enabled=self.context.is_main,
            start_step=progress.step,
            max_steps=self.config.loop.max_steps,
        )
        if self.parts.description:
            monitor.write(
                f"[{self.config.stage}] {self.parts.description} strategy={self.strategy}"
            )
        if self._emulated_bf16():
            monitor.write(
                "warning: dist.precision=bf16 on a CPU without native bf16 (AVX-512 BF16 or "
                "AMX): autocast is emulated and slower than fp32; set dist.precision=fp32"
            )
        losses: list[float] = []
        self.model.train()
        try:
            progress = self._run(progress, end_step, monitor, losses)
            export = self._finish(progress, complete=end_step == self.config.loop.max_steps)
        finally:
            monitor.close()
        return TrainResult(
            steps=progress.step,
            samples_seen=progress.samples_seen,
            samples_per_s=monitor.throughput.run_rate(),
            final_loss=losses[-1] if losses else float("nan"),
            losses=losses,
            checkpoint=str(self.last_checkpoint) if self.last_checkpoint else None,
            export=str(export) if export else None,
            strategy=self.strategy,
        )

    # ------------------------------------------------------------------ loop
    def _run(
        self, progress: Progress, end_step: int, monitor: RunMonitor, losses: list[float]
    ) -> Progress:
        window: dict[str, list[float]] = {}
        accum = self.config.loop.grad_accum_steps
        batches = iter(self._loader(progress.step))
        for step in range(progress.step, end_step):
            micro_batches = [next(batches) for _ in range(accum)]
            stats = self._forward_backward(step, micro_batches)
            grad_norm = self._optimizer_step(step, stats, micro_batches)
            stats.metrics["grad_norm"] = grad_norm
            progress = Progress(step + 1, progress.samples_seen + self.layout.global_batch)
            losses.append(stats.metrics["loss"])
            for name, value in stats.metrics.items():
                window.setdefault(name, []).append(value)
            monitor.step_done(step, self.layout.global_batch)
            if progress.step % self.config.log.every_steps == 0 or progress.step == 1:
                means = {k: sum(v) / len(v) for k, v in window.items()}
                monitor.log_scalars(progress.step, means, self.scheduler.get_last_lr()[0])
                window.clear()
            self._maybe_preview(progress.step, micro_batches[-1][1], monitor)
            self._maybe_checkpoint(progress)
        return progress

    def _forward_backward(self, step: int, micro_batches: list[tuple[Any, Any]]) -> _StepStats:
        accum = len(micro_batches)
        sums: dict[str, float] = {}
        bad: tuple[BatchId | None, float] | None = None
        for micro_step, (keys, batch) in enumerate(micro_batches):
            batch = move_to_device(batch, self.context.device)
            with self._sync_context(is_last=micro_step == accum - 1), self._autocast():
                loss, metrics = self.model(batch)
                (loss / accum).backward()
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value) and bad is None:
                bad = (self._batch_id(step, micro_step, keys), loss_value)
            for name, value in {"loss": loss_value, **_as_floats(metrics)}.items():
                sums[name] = sums.get(name, 0.0) + value
        return self._reduce(sums, accum, bad)

    def _reduce(
        self, sums: dict[str, float], accum: int, bad: tuple[BatchId | None, float] | None
    ) -> _StepStats:
        names = sorted(sums)
        # Metrics of a NaN micro-batch would poison the means; the flag travels separately.
        values = [0.0 if not math.isfinite(sums[n]) else sums[n] for n in names]
        packed = torch.tensor([*values, 1.0 if bad else 0.0], dtype=torch.float64)
        self.context.all_reduce_sum(packed)
        denominator = accum * self.context.world_size
        metrics = {n: float(packed[i]) / denominator for i, n in enumerate(names)}
        return _StepStats(metrics=metrics, bad=bad, any_bad=bool(packed[-1] > 0))

    def _optimizer_step(
        self, step: int, stats: _StepStats, micro_batches: list[tuple[Any, Any]]
    ) -> float:
        if stats.any_bad:
            self.optimizer.zero_grad(set_to_none=True)
            batch_id, value = stats.bad if stats.bad else (None, float("nan"))
            raise NonFiniteLossError(
                non_finite_loss_message("loss", value, batch_id, step), batch_id
            )
        clip = self.config.optim.grad_clip if self.config.optim.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        norm_value = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        if not math.isfinite(norm_value):
            self.optimizer.zero_grad(set_to_none=True)
            batch_id = self._batch_id(step, len(micro_batches) - 1, micro_batches[-1][0])
            raise NonFiniteLossError(
                non_finite_loss_message("gradient norm", norm_value, batch_id, step), batch_id
            )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm_value

    # ------------------------------------------------------------------ data
    def _loader(self, start_step: int) -> DataLoader:
        loop = self.config.loop
        sampler = StreamSampler(
            len(self.parts.dataset),
            self.layout,
            rank=self.context.rank,
            seed=loop.seed,
            shuffle=loop.shuffle,
            start_step=start_step,
            max_steps=loop.max_steps,
        )
        return DataLoader(
            KeyedDataset(self.parts.dataset),
            batch_size=loop.micro_batch_size,
            sampler=sampler,
            collate_fn=KeyedCollate(self.parts.collate),
            num_workers=loop.num_workers,
            prefetch_factor=loop.prefetch_factor if loop.num_workers > 0 else None,
            pin_memory=self.context.device.type == "cuda",
            worker_init_fn=seed_worker,
            # A private generator: creating the iterator must not consume the global RNG,
            # or a resumed run would draw different dropout noise than an uninterrupted one.
            generator=torch.Generator().manual_seed(loop.seed),
        )

    def _batch_id(self, step: int, micro_step: int, keys: Any) -> BatchId:
        return BatchId(
            step=step,
            micro_step=micro_step,
            rank=self.context.rank,
            positions=tuple(k.position for k in keys),
            indices=tuple(k.index for k in keys),
        )

    # ------------------------------------------------------------------ contexts
    def _sync_context(self, is_last: bool) -> contextlib.AbstractContextManager:
        """Reduce gradients across ranks only on the last micro-batch of a step."""
        if self.strategy == "ddp" and not is_last:
            return self.model.no_sync()
        if self.strategy == "fsdp":
            self.model.set_requires_gradient_sync(is_last)
        return contextlib.nullcontext()

    def _emulated_bf16(self) -> bool:
        if self.config.dist.precision != "bf16" or self.context.device.type != "cpu":
            return False
        return not torch.ops.mkldnn._is_mkldnn_bf16_supported()

    def _autocast(self) -> contextlib.AbstractContextManager:
        # FSDP casts parameters itself (MixedPrecisionPolicy); others use autocast.
        enabled = self.config.dist.precision == "bf16" and self.strategy != "fsdp"
        return torch.autocast(self.context.device.type, dtype=torch.bfloat16, enabled=enabled)

    # ------------------------------------------------------------------ checkpoints
    def _resume(self) -> Progress:
        choice = self.config.checkpoint.resume
        if choice == "never":
            return Progress(0, 0)
        if choice == "auto":
            checkpoint = checkpoint_io.latest_checkpoint(self.checkpoint_root)
            if checkpoint is None:
                return Progress(0, 0)
        else:
            checkpoint = Path(choice)
        self._check_same_stage(checkpoint)
        progress = load_training_state(
            checkpoint,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            context=self.context,
        )
        if self.context.is_main:
            print(f"[{self.config.stage}] resumed from {checkpoint} at step {progress.step}")
        self.last_checkpoint = checkpoint
        return progress

    def _check_same_stage(self, checkpoint: Path) -> None:
        saved = checkpoint / "config.json"
        if not saved.is_file():
            return  # a checkpoint being published has it; read_meta reports incomplete ones
        stage = json.loads(saved.read_text()).get("stage")
        if stage != self.config.stage:
            raise ValueError(
                f"cannot resume {self.config.stage} from {checkpoint}: it is a {stage!r} "
                "checkpoint (use another output_dir, or --resume never)"
            )

    def _maybe_checkpoint(self, progress: Progress) -> None:
        every = self.config.checkpoint.every_steps
        if every and progress.step % every == 0:
            self._save(progress)

    def _save(self, progress: Progress) -> None:
        self.last_checkpoint = save_training_state(
            self.checkpoint_root,
            progress,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            context=self.context,
            sharded=self.strategy == "fsdp",
            config=to_dict(self.config),
        )
        if self.config.checkpoint.export_each and self.parts.export is not None:
            self._export(self.last_checkpoint / EXPORT_NAME)
        if self.context.is_main:
            checkpoint_io.prune(self.checkpoint_root, self.config.checkpoint.keep_last)
        self.context.barrier()

    def _finish(self, progress: Progress, complete: bool) -> Path | None:
        last_saved = self.last_checkpoint is not None and self.last_checkpoint.name == (
            checkpoint_io.checkpoint_name(progress.step)
        )
        if self.config.checkpoint.save_final and not last_saved:
            self._save(progress)
        if self.parts.export is None or not complete:
            return None
        return self._export(self.output_dir / EXPORT_NAME)

    def _export(self, directory: Path) -> Path | None:
        """The stage's product from the current weights (every rank gathers, rank 0 writes)."""
        state = get_model_state_dict(
            self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        export = None
        if self.context.is_main:
            # written beside, then renamed: a kill mid-export never leaves a torn product
            partial = directory.with_name(directory.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            self.parts.export(state, partial)
            shutil.rmtree(directory, ignore_errors=True)
            partial.rename(directory)
            export = directory
        self.context.barrier()
        return export

    def _maybe_preview(self, step: int, batch: Any, monitor: RunMonitor) -> None:
        every = self.config.log.preview_every_steps
        if self.parts.preview is None or not every or step % every:
            return
        module = unwrap(self.model)
        was_training = module.training
        module.eval()
        if self.strategy == "fsdp":
            # The preview calls sub-modules directly, not the root's forward: gather the root's
            # own parameters (blocks gather theirs in their forward hooks as usual).
            module.unshard()
        with torch.no_grad(), self._autocast():
            image = self.parts.preview(module, move_to_device(batch, self.context.device))
        if self.strategy == "fsdp":
            module.reshard()
        module.train(was_training)
        if self.context.is_main:
            from PIL import Image

            path = self.output_dir / "previews" / f"step_{step:08d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
            monitor.log_image("preview/predicted_vs_true", image, step)


def _as_floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value.detach() if isinstance(value, torch.Tensor) else value)
        for name, value in metrics.items()
    }
