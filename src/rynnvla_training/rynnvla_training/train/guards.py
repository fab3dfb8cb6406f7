"""Stop training loudly when the loss or the gradients stop being finite."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchId:
    """Names one micro-batch: where it ran and which samples it held."""

    step: int  # optimiser step (0-based) the micro-batch belongs to
    micro_step: int  # gradient-accumulation index within the step
    rank: int
    positions: tuple[int, ...]  # global sample-stream positions (unique per draw)
    indices: tuple[int, ...]  # dataset indices

    def __str__(self) -> str:
        return (
            f"batch step={self.step} micro_step={self.micro_step} rank={self.rank} "
            f"stream_positions={list(self.positions)} dataset_indices={list(self.indices)}"
        )


class NonFiniteLossError(RuntimeError):
    """Raised on every rank when any rank saw a NaN/Inf loss or gradient norm."""

    def __init__(self, message: str, batch: BatchId | None) -> None:
        super().__init__(message)
        self.batch = batch


def non_finite_loss_message(what: str, value: float, batch: BatchId | None, step: int) -> str:
    where = str(batch) if batch is not None else "a batch on another rank"
    return (
        f"non-finite {what} ({value}) at optimiser step {step} in {where}; "
        "training stopped, the last saved checkpoint is untouched"
    )
