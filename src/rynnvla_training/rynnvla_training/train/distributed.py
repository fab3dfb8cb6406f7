"""Process group set-up (torchrun or a single process) and model wrapping (DDP / FSDP2)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from rynnvla_training.train.config import DistConfig


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place sum over ranks (identity in a single process)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor


def init_distributed(config: DistConfig) -> DistContext:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, ...).

    Without those variables this is a single process and no process group is created.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(config.device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = config.backend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(clean: bool = True) -> None:
    """Destroy the process group; `clean`: this rank finished without error, so all ranks
    meet at a barrier first (after an error the others may never arrive: no barrier)."""
    if dist.is_initialized():
        if clean:
            # Destroying the group while gloo still holds work of a rank that is behind aborted
            # rank 0 at exit ("terminate called without an active exception") in about half
            # of the 2-process FSDP runs on a 2-core machine; 0 of 6 with the barrier.
            dist.barrier()
        dist.destroy_process_group()


def _pick_device(choice: str, local_rank: int) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("dist.device='cuda' but CUDA is not available on this machine")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def resolve_strategy(config: DistConfig, context: DistContext, model: nn.Module) -> str:
    """'single', 'ddp' or 'fsdp' for this job; 'auto' shards models of >= fsdp_min_params."""
    if config.strategy != "auto":
        if config.strategy != "single" or not context.distributed:
            return config.strategy
        raise ValueError(f"dist.strategy='single' but WORLD_SIZE={context.world_size}")
    n_params = sum(p.numel() for p in model.parameters())
    if n_params >= config.fsdp_min_params:
        return "fsdp"
    return "ddp" if context.distributed else "single"


def find_transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The units that FSDP shards and activation checkpointing recomputes: what the model's
    `transformer_blocks()` names, else repeated layers (>= 2 modules of one class in an
    nn.ModuleList; nested lists inside a block are skipped)."""
    if hasattr(model, "transformer_blocks"):
        return list(model.transformer_blocks())
    blocks: list[nn.Module] = []
    claimed: set[int] = set()
    for module in model.modules():
        if id(module) in claimed or not isinstance(module, nn.ModuleList) or len(module) < 2:
            continue
        kinds = {type(child) for child in module}
        if len(kinds) == 1 and any(True for _ in module[0].parameters()):
            for child in module:
                blocks.append(child)
                claimed.update(id(m) for m in child.modules())
    return blocks


def apply_activation_checkpointing(model: nn.Module, blocks: list[nn.Module]) -> None:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        checkpoint_wrapper,
    )
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing as apply_ac,
    )

    block_ids = {id(block) for block in blocks}
    wrapper = functools.partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    apply_ac(model, checkpoint_wrapper_fn=wrapper, check_fn=lambda m: id(m) in block_ids)


def wrap_model(
    model: nn.Module, strategy: str, context: DistContext, config: DistConfig
) -> nn.Module:
    """Move to the device and wrap for the strategy; the returned module is what to call."""
    blocks = find_transformer_blocks(model)
    if config.activation_checkpointing:
        if not blocks:
            raise ValueError("dist.activation_checkpointing=True but the model has no blocks")
        apply_activation_checkpointing(model, blocks)
        blocks = find_transformer_blocks(model)  # the wrappers replaced the block modules
    if config.compile_blocks:
        if not blocks:
            raise ValueError("dist.compile_blocks=True but the model has no transformer blocks")
        for block in blocks:
            block.compile(dynamic=True)  # in place: state_dict keys and FSDP units unchanged
    model.to(context.device)
    if strategy == "single":
        return model
    if strategy == "ddp":
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if strategy == "fsdp":
        return _fully_shard(model, blocks, context, config)
    raise ValueError(f"unknown strategy {strategy!r}")


def _fully_shard(
    model: nn.Module, blocks: list[nn.Module], context: DistContext, config: DistConfig
) -> nn.Module:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if not dist.is_initialized():
        # FSDP on one device (e.g. benchmarking the 7B preset) still needs a process group.
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
        backend = "nccl" if context.device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=0, world_size=1)
    mesh = init_device_mesh(context.device.type, (context.world_size,))
    policy = MixedPrecisionPolicy(
        param_dtype=torch.bfloat16 if config.precision == "bf16" else torch.float32,
        reduce_dtype=torch.float32,
    )
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.is_contiguous():  # e.g. channels-last conv weights
                parameter.data = parameter.data.contiguous()
    for block in blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP wrapper (FSDP2 shards in place and needs no unwrapping)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
