"""The stage-independent trainer on a small real regression task (single process, CPU)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from toy_task import toy_config, toy_parts

from rynnvla_training.train import checkpoint_io
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.guards import NonFiniteLossError
from rynnvla_training.train.trainer import Trainer

SINGLE = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _fit(config, stop_at_step=None, **parts_kwargs):
    return Trainer(config, toy_parts(**parts_kwargs), SINGLE).fit(stop_at_step=stop_at_step)


def _weights(checkpoint):
    return torch.load(checkpoint / "state.pt", weights_only=True)["model"]


def test_training_lowers_the_loss(tmp_path):
    result = _fit(toy_config(tmp_path, loop={"max_steps": 30}))
    assert result.steps == 30
    assert len(result.losses) == 30
    assert result.final_loss < 0.5 * result.losses[0]
    assert result.samples_per_s > 0
    assert checkpoint_io.latest_checkpoint(tmp_path / "checkpoints").name == "step_00000030"


def test_resume_after_two_steps_equals_four_uninterrupted_steps(tmp_path):
    # Dropout makes the run depend on the torch RNG, so RNG restore is checked too.
    straight = _fit(toy_config(tmp_path / "a", loop={"max_steps": 4}), dropout=0.2)
    _fit(toy_config(tmp_path / "b", loop={"max_steps": 4}), stop_at_step=2, dropout=0.2)
    resumed = _fit(toy_config(tmp_path / "b", loop={"max_steps": 4}), dropout=0.2)
    assert resumed.losses == straight.losses[2:]
    final_a, final_b = (
        _weights(tmp_path / "a/checkpoints/step_00000004"),
        _weights(tmp_path / "b/checkpoints/step_00000004"),
    )
    for name, value in final_a.items():
        assert torch.equal(value, final_b[name]), name


def test_resume_restores_optimizer_and_scheduler_state(tmp_path):
    _fit(toy_config(tmp_path, loop={"max_steps": 3}))
    config = toy_config(tmp_path, loop={"max_steps": 5})
    trainer = Trainer(config, toy_parts(), SINGLE)
    progress = trainer._resume()
    assert progress.step == 3 and progress.samples_seen == 12
    assert trainer.scheduler.last_epoch == 3
    assert all(int(s["step"]) == 3 for s in trainer.optimizer.state.values())


def test_gradient_accumulation_matches_one_big_micro_batch(tmp_path):
    big = _fit(toy_config(tmp_path / "big", loop={"max_steps": 3, "micro_batch_size": 4}))
    accumulated = _fit(
        toy_config(
            tmp_path / "acc", loop={"max_steps": 3, "micro_batch_size": 2, "grad_accum_steps": 2}
        )
    )
    assert accumulated.losses == pytest.approx(big.losses, rel=1e-5, abs=1e-6)
    weights_big = _weights(tmp_path / "big/checkpoints/step_00000003")
    weights_acc = _weights(tmp_path / "acc/checkpoints/step_00000003")
    for name, value in weights_big.items():
        torch.testing.assert_close(weights_acc[name], value, rtol=1e-5, atol=1e-6)


def test_nan_loss_stops_with_step_and_batch_id_and_keeps_last_checkpoint(tmp_path):
    # Save every step; the dataset's sample 5 is NaN, so training stops when it is drawn.
    config = toy_config(tmp_path, loop={"max_steps": 50}, checkpoint={"every_steps": 1})
    with pytest.raises(NonFiniteLossError) as caught:
        _fit(config, nan_index=5)
    error = caught.value
    assert error.batch is not None and 5 in error.batch.indices
    message = str(error)
    assert f"optimiser step {error.batch.step}" in message
    assert "dataset_indices=" in message and "5" in message
    latest = checkpoint_io.latest_checkpoint(tmp_path / "checkpoints")
    if error.batch.step == 0:
        assert latest is None
    else:
        assert latest.name == checkpoint_io.checkpoint_name(error.batch.step)
        weights = _weights(latest)
        assert all(torch.isfinite(v).all() for v in weights.values())


def test_checkpoints_keep_only_the_last_k(tmp_path):
    config = toy_config(
        tmp_path, loop={"max_steps": 6}, checkpoint={"every_steps": 2, "keep_last": 2}
    )
    _fit(config)
    names = [p.name for _, p in checkpoint_io.list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step_00000004", "step_00000006"]


def test_resume_from_an_explicit_missing_path_is_a_clear_error(tmp_path):
    config = toy_config(tmp_path, checkpoint={"resume": str(tmp_path / "nope")})
    with pytest.raises(FileNotFoundError, match="nope"):
        _fit(config)


def test_tensorboard_logs_every_loss_term_lr_and_throughput(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = toy_config(tmp_path, loop={"max_steps": 3}, log={"tensorboard": True})
    _fit(config)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"train/loss", "train/mse", "train/pred_abs", "train/lr", "train/samples_per_s"}
    assert expected <= tags
    assert {"train/grad_norm"} <= tags


def test_resuming_another_stages_checkpoint_is_refused(tmp_path):
    _fit(toy_config(tmp_path, loop={"max_steps": 1}))
    other = dataclasses.replace(toy_config(tmp_path, loop={"max_steps": 2}), stage="other")
    with pytest.raises(ValueError, match="it is a 'toy' checkpoint"):
        _fit(other)
