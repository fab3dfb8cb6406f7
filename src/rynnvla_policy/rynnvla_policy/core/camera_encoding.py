"""VQ encoding of one observation's cameras: batched, or one camera at a time."""

from __future__ import annotations

import torch

from .image_tokenizer import ImageTokenizer


class CameraEncoder:
    """Pixel tensors (3, h, w) per camera -> VQ code grids (gh, gw) on the CPU."""

    def __init__(self, tokenizer: ImageTokenizer, device: torch.device) -> None:
        self.tokenizer = tokenizer
        self.device = device

    def encode_one(self, pixels: torch.Tensor) -> torch.Tensor:
        """One camera as a batch of one (the reference's way)."""
        return self.tokenizer.encode(pixels[None].to(self.device))[0].cpu()  # (gh, gw)

    def encode_each(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.encode_one(p) for p in pixels]

    def encode_batched(self, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Cameras with equal crop sizes go through the encoder together (one kernel launch per
        layer on GPU)."""
        codes: list[torch.Tensor | None] = [None] * len(pixels)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, p in enumerate(pixels):
            by_shape.setdefault(tuple(p.shape), []).append(index)
        for indices in by_shape.values():
            stacked = torch.stack([pixels[i] for i in indices]).to(self.device)
            for i, grid in zip(indices, self.tokenizer.encode(stacked).cpu(), strict=True):
                codes[i] = grid
        return codes  # type: ignore[return-value]
