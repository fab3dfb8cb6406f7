"""Shared fixtures of the model-core tests: one tiny random checkpoint per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rynnvla_policy.core import Observation
from rynnvla_policy.core.testing import make_tiny_checkpoint

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


def _make_observation(
    seed: int = 0,
    instruction: str = "put the green block on the plate",
    size: tuple[int, int] = (96, 128),
) -> Observation:
    rng = np.random.default_rng(seed)
    images = {cam: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for cam in ("front", "wrist")}
    return Observation(images=images, state=rng.normal(0.0, 0.3, 6), instruction=instruction)


@pytest.fixture
def make_observation():
    """make_observation(seed=0, instruction=..., size=(96, 128)) -> a random 2-camera Observation."""
    return _make_observation
