"""Save and restore everything an exact resume needs.

Layout of `<output_dir>/checkpoints/step_XXXXXXXX/`:
- `state.pt` (full format, written by rank 0): model + optimizer state dicts keyed by parameter
  names, LR scheduler state. Used for single-process and DDP runs.
- `sharded/` (FSDP runs): the same model + optimizer state written by every rank with
  `torch.distributed.checkpoint`, so no rank ever materialises the whole 7B optimizer state.
- `scheduler.pt` (sharded format only; in `state.pt` otherwise).
- `rng/rank_XXXXX.pt`: python / numpy / torch / CUDA generator states of each rank.
- `config.json`: the run's TrainConfig; `meta.json` (written last): step, samples seen, format.
The data position needs no state of its own: the sample stream is a function of the step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_state_dict,
    set_state_dict,
)

from rynnvla_training.train import checkpoint_io
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.rng import capture_rng_state, restore_rng_state


@dataclass(frozen=True)
class Progress:
    step: int  # optimiser steps completed
    samples_seen: int  # global samples consumed


def save_training_state(
    root: Path,
    progress: Progress,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    context: DistContext,
    sharded: bool,
    config: dict[str, Any],
) -> Path:
    """Collective: every rank must call it. Returns the published checkpoint directory."""
    if context.is_main:
        checkpoint_io.prepare_temporary(root, progress.step)
    context.barrier()
    tmp = checkpoint_io.temporary_path(root, progress.step)
    _save_model_and_optimizer(tmp, model, optimizer, scheduler, context, sharded)
    (tmp / "rng").mkdir(exist_ok=True)
    checkpoint_io.save_tensor_file(capture_rng_state(), tmp / "rng" / f"rank_{context.rank:05d}.pt")
    context.barrier()
    final = root / checkpoint_io.checkpoint_name(progress.step)
    if context.is_main:
        with checkpoint_io.durable_file(tmp / "config.json", "w") as handle:
            json.dump(config, handle, indent=2)
        meta = {
            "step": progress.step,
            "samples_seen": progress.samples_seen,
            "world_size": context.world_size,
            "format": "sharded" if sharded else "full",
            "saved_at": time.time(),
        }
        final = checkpoint_io.commit(tmp, meta)
    context.barrier()
    return final


def load_training_state(
    checkpoint: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    context: DistContext,
) -> Progress:
    """Restore model, optimiser, scheduler and this rank's RNG; returns where training was."""
    meta = checkpoint_io.read_meta(checkpoint)
    if meta["format"] == "sharded":
        _load_sharded(checkpoint, model, optimizer, scheduler)
    else:
        state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
        set_state_dict(
            model,
            optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
            options=StateDictOptions(full_state_dict=True),
        )
        scheduler.load_state_dict(state["scheduler"])
    _restore_rng(checkpoint, context, meta)
    return Progress(step=int(meta["step"]), samples_seen=int(meta["samples_seen"]))


def load_model_weights(checkpoint: Path, model: nn.Module) -> None:
    """Only the model weights of a training checkpoint (full format), e.g. for evaluation."""
    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])


def _save_model_and_optimizer(
    tmp: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    context: DistContext,
    sharded: bool,
) -> None:
    if sharded:
        import torch.distributed.checkpoint as dcp

        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=tmp / "sharded")
        if context.is_main:
            checkpoint_io.save_tensor_file(scheduler.state_dict(), tmp / "scheduler.pt")
        return
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state, optim_state = get_state_dict(model, optimizer, options=options)
    if context.is_main:
        state = {
            "model": model_state,
            "optimizer": optim_state,
            "scheduler": scheduler.state_dict(),
        }
        checkpoint_io.save_tensor_file(state, tmp / "state.pt")


def _load_sharded(
    checkpoint: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    import torch.distributed.checkpoint as dcp

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optim_state}
    dcp.load(state, checkpoint_id=checkpoint / "sharded")
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))


def _restore_rng(checkpoint: Path, context: DistContext, meta: dict[str, Any]) -> None:
    path = checkpoint / "rng" / f"rank_{context.rank:05d}.pt"
    if meta["world_size"] != context.world_size or not path.is_file():
        # A different world size cannot replay per-rank streams; data order is still exact
        # (it depends only on the step), dropout noise is re-seeded per rank instead.
        torch.manual_seed(int(meta["step"]) * 1000 + context.rank)
        return
    restore_rng_state(torch.load(path, weights_only=True))
