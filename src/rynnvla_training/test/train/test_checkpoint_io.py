"""Atomic checkpoint directories: a process killed mid-save leaves the last good one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from toy_task import toy_config, toy_parts

from rynnvla_training.train import checkpoint_io
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.trainer import Trainer

HERE = Path(__file__).parent
SINGLE = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))

# The child trains 1 step (checkpoint step 1), then trains on and blocks inside the save of
# step 2 at the chosen phase, after telling the parent; the parent SIGKILLs it there.
_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import torch
    sys.path.insert(0, {here!r})
    from toy_task import toy_config, toy_parts
    from rynnvla_training.train import checkpoint_io, train_state
    from rynnvla_training.train.distributed import DistContext
    from rynnvla_training.train.trainer import Trainer

    out, phase = Path({out!r}), {phase!r}
    ready = out / "in_save"

    def block_forever():
        ready.write_text("1")
        while True:
            time.sleep(0.05)

    real_save, real_commit = checkpoint_io.save_tensor_file, checkpoint_io.commit
    def save_tensor_file(obj, path):
        if "step_00000002" in str(path) and phase == "writing" and path.name == "state.pt":
            with open(path, "wb") as handle:
                handle.write(b"partial")  # half-written file, then killed
                handle.flush()
            block_forever()
        real_save(obj, path)
    def commit(tmp, meta):
        if "step_00000002" in str(tmp) and phase == "before_rename":
            block_forever()
        return real_commit(tmp, meta)
    checkpoint_io.save_tensor_file, checkpoint_io.commit = save_tensor_file, commit
    context = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    config = toy_config(out, loop={{"max_steps": 3}}, checkpoint={{"every_steps": 1}})
    Trainer(config, toy_parts(), context).fit()
    """
)


@pytest.mark.parametrize("phase", ["writing", "before_rename"])
def test_kill_mid_save_leaves_the_last_good_checkpoint_loadable(tmp_path, phase):
    code = _CHILD.format(here=str(HERE), out=str(tmp_path), phase=phase)
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "in_save").exists():
            assert child.poll() is None, f"child exited early with {child.returncode}"
            assert time.monotonic() < deadline, "child never reached the save"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    root = tmp_path / "checkpoints"
    assert (root / ".tmp-step_00000002").is_dir()  # the interrupted save is left behind ...
    latest = checkpoint_io.latest_checkpoint(root)  # ... but never taken for a checkpoint
    assert latest is not None and latest.name == "step_00000001"
    assert checkpoint_io.read_meta(latest)["step"] == 1
    # The run resumes from step 1 and its next save removes the stale temporary directory.
    config = toy_config(tmp_path, loop={"max_steps": 3}, checkpoint={"every_steps": 1})
    result = Trainer(config, toy_parts(), SINGLE).fit()
    assert len(result.losses) == 2
    assert not (root / ".tmp-step_00000002").exists()
    assert checkpoint_io.latest_checkpoint(root).name == "step_00000003"


def test_commit_publishes_only_complete_directories(tmp_path):
    tmp = checkpoint_io.prepare_temporary(tmp_path, 7)
    checkpoint_io.save_tensor_file({"x": torch.ones(2)}, tmp / "state.pt")
    assert checkpoint_io.list_checkpoints(tmp_path) == []
    final = checkpoint_io.commit(tmp, {"step": 7})
    assert final.name == "step_00000007" and not tmp.exists()
    assert checkpoint_io.list_checkpoints(tmp_path) == [(7, final)]
    assert checkpoint_io.read_meta(final) == {"step": 7}


def test_directory_without_meta_is_not_a_checkpoint(tmp_path):
    (tmp_path / "step_00000009").mkdir()
    assert checkpoint_io.latest_checkpoint(tmp_path) is None
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        checkpoint_io.read_meta(tmp_path / "step_00000009")


def test_prune_keeps_the_newest(tmp_path):
    for step in (1, 2, 3):
        checkpoint_io.commit(checkpoint_io.prepare_temporary(tmp_path, step), {"step": step})
    deleted = checkpoint_io.prune(tmp_path, keep_last=1)
    assert [p.name for p in deleted] == ["step_00000001", "step_00000002"]
    assert [s for s, _ in checkpoint_io.list_checkpoints(tmp_path)] == [3]
