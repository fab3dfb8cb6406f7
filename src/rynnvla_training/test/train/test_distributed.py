"""Two CPU processes under torchrun (gloo): DDP equals one process on the same global batch;
FSDP (sharded checkpoints) trains and resumes exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


def _torchrun(output_dir: Path, nproc: int, overrides: dict, timeout_s: float = 240.0) -> None:
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{HERE}:{os.environ.get('PYTHONPATH', '')}"
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(HERE / "toy_task.py"),
        str(output_dir),
        json.dumps(overrides),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"


def _result(output_dir: Path, steps: int) -> dict:
    return json.loads((output_dir / f"result_{steps}.json").read_text())


def _assert_states_close(a: dict, b: dict, **tolerance) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(torch.tensor(a[name]), torch.tensor(b[name]), **tolerance)


def test_ddp_two_processes_match_one_process_on_the_same_global_batch(tmp_path):
    # 2 ranks x 2 accumulation steps x 1 sample == 1 process x 4 samples (no_sync path too).
    base = {"loop": {"max_steps": 3}, "dist": {"strategy": "auto"}}
    ddp_loop = {"max_steps": 3, "micro_batch_size": 1, "grad_accum_steps": 2}
    _torchrun(tmp_path / "ddp", 2, {**base, "loop": ddp_loop})
    _torchrun(tmp_path / "one", 1, {**base, "loop": {"max_steps": 3, "micro_batch_size": 4}})
    ddp, one = _result(tmp_path / "ddp", 3), _result(tmp_path / "one", 3)
    assert ddp["strategy"] == "ddp" and one["strategy"] == "single"
    assert ddp["losses"] == pytest.approx(one["losses"], rel=1e-5)
    _assert_states_close(ddp["state"], one["state"], rtol=1e-5, atol=1e-6)


def test_fsdp_two_processes_train_and_resume_exactly_from_sharded_checkpoints(tmp_path):
    fsdp_loop = {"max_steps": 4, "micro_batch_size": 1, "grad_accum_steps": 2}
    fsdp = {"dist": {"strategy": "fsdp"}, "loop": fsdp_loop}
    _torchrun(tmp_path / "straight", 2, fsdp)
    _torchrun(tmp_path / "resumed", 2, {**fsdp, "stop_at_step": 2})
    assert (tmp_path / "resumed/checkpoints/step_00000002/sharded").is_dir()
    _torchrun(tmp_path / "resumed", 2, fsdp)
    straight, resumed = _result(tmp_path / "straight", 4), _result(tmp_path / "resumed", 4)
    assert straight["strategy"] == "fsdp"
    assert resumed["losses"] == straight["losses"][2:]
    _assert_states_close(resumed["state"], straight["state"], rtol=0, atol=0)
    single = {"loop": {"max_steps": 4, "micro_batch_size": 4}}
    _torchrun(tmp_path / "single", 1, single)
    _assert_states_close(
        straight["state"], _result(tmp_path / "single", 4)["state"], rtol=1e-5, atol=1e-6
    )
