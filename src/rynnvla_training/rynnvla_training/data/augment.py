"""Colour jitter shared by all frames and cameras of one training sample (reference section 8:
brightness 0.3, contrast 0.4, saturation 0.5, hue 0.1; no crops).

Works on preprocessed pixels in [-1, 1] (the model-core processor's output). Parameters are
drawn from the sample's own RNG (`SampleKey.rng()`), so augmentation is reproducible across
DataLoader workers and resumes. Hue is rotated in YIQ space (a linear approximation of an HSV
hue shift; torchvision is not available on CPU-only installs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rynnvla_training.train.config import check

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class ColorJitterConfig:
    """Maximum relative change of each property; 0 disables it."""

    brightness: float = 0.3
    contrast: float = 0.4
    saturation: float = 0.5
    hue: float = 0.1  # fraction of a full turn, <= 0.5

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            check(0 <= value < 1, f"color_jitter.{name}", value, "must be in [0, 1)")
        check(0 <= self.hue <= 0.5, "color_jitter.hue", self.hue, "must be in [0, 0.5]")

    @property
    def enabled(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation, self.hue))


@dataclass(frozen=True)
class JitterDraw:
    brightness: float
    contrast: float
    saturation: float
    hue: float

    @classmethod
    def sample(cls, config: ColorJitterConfig, rng: np.random.Generator) -> JitterDraw:
        def factor(amount: float) -> float:
            return float(rng.uniform(1 - amount, 1 + amount)) if amount else 1.0

        return cls(
            brightness=factor(config.brightness),
            contrast=factor(config.contrast),
            saturation=factor(config.saturation),
            hue=float(rng.uniform(-config.hue, config.hue)) if config.hue else 0.0,
        )

    def apply(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (..., 3, h, w) in [-1, 1] -> jittered, same shape and range."""
        rgb = (pixels + 1.0) * 0.5  # (..., 3, h, w) in [0, 1]
        rgb = (rgb * self.brightness).clamp(0, 1)
        luma = torch.einsum("...chw,c->...hw", rgb, _LUMA)  # (..., h, w)
        mean = luma.mean(dim=(-2, -1), keepdim=True).unsqueeze(-3)  # (..., 1, 1, 1)
        rgb = (mean + self.contrast * (rgb - mean)).clamp(0, 1)
        grey = torch.einsum("...chw,c->...hw", rgb, _LUMA).unsqueeze(-3)
        rgb = (grey + self.saturation * (rgb - grey)).clamp(0, 1)
        if self.hue:
            rgb = _rotate_hue(rgb, self.hue).clamp(0, 1)
        return rgb * 2.0 - 1.0


def _rotate_hue(rgb: torch.Tensor, turns: float) -> torch.Tensor:
    angle = 2 * math.pi * turns
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    matrix = (_YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ).to(rgb.dtype)  # (3, 3)
    return torch.einsum("ij,...jhw->...ihw", matrix, rgb)
