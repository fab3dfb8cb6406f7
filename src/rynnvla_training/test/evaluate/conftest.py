"""Fixtures of the evaluation tests: a tiny random-weight checkpoint (shared by the session)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def eval_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # the nodes share 2 cores with DDS, physics and rendering
    from rynnvla_policy.core.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("eval_tiny") / "ckpt", seed=1)
