"""Training batches for stages 1-3 feed ``forward(batch) -> (loss, metrics)``; a 2-step train
then resume from disk equals 4 uninterrupted steps on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rynnvla_policy.core import Checkpoint, RynnVLAModel
from rynnvla_policy.core.batching import RobotSample, StageBatcher, TrajectorySample, VideoSample
from rynnvla_policy.core.modeling import IGNORE_INDEX


@pytest.fixture(scope="module")
def parts(tiny_checkpoint) -> Checkpoint:
    return Checkpoint.from_pretrained(tiny_checkpoint)


@pytest.fixture
def batcher(parts) -> StageBatcher:
    return StageBatcher(
        parts.model.config, parts.processor, parts.image_tokenizer, parts.action_vae
    )


def _robot_sample(seed: int, frames: int = 2) -> RobotSample:
    rng = np.random.default_rng(seed)
    states = rng.normal(0, 0.3, (frames, 6))
    actions = states[:, None, :] + np.cumsum(rng.normal(0, 0.02, (frames, 20, 6)), axis=1)
    mask = np.ones((frames, 20), bool)
    mask[-1, 15:] = False  # episode ends inside the last chunk
    images = {
        c: rng.integers(0, 256, (frames, 96, 128, 3), dtype=np.uint8) for c in ("front", "wrist")
    }
    return RobotSample(
        "put the green block on the plate", states, actions, images, action_mask=mask
    )


def test_robot_batch_bookkeeping(batcher, parts):
    batch = batcher.robot_batch([_robot_sample(0), _robot_sample(1)])
    tok = parts.model.config.tokens
    ids, labels = batch["input_ids"], batch["labels"]
    assert ids.shape[0] == 2 and ids.shape == labels.shape
    assert int((ids == tok.state_id).sum()) == batch["states"].shape[0] == 4
    assert int((ids == tok.action_id).sum()) == batch["action_targets"].shape[0] == 4
    assert batch["action_targets"].shape[1] == parts.model.config.action_latent_dim
    # Frame 1's image tokens are inputs only; frame 2's are predicted.
    first_wrist_end = int(torch.nonzero(ids[0] == tok.wrist_end_id)[0])
    assert bool((labels[0, : first_wrist_end + 1] == IGNORE_INDEX).all())
    assert int((labels[0] == tok.wrist_end_id).sum()) == 1
    loss, metrics = parts.model(batch)
    assert torch.isfinite(loss)
    assert set(metrics) >= {"loss", "ce_loss", "action_loss", "z_loss"}


def test_precomputed_codes_give_the_same_batch(batcher):
    sample = _robot_sample(2)
    cached = RobotSample(
        sample.instruction, sample.states, sample.actions,
        codes={c: batcher.encode_frames(v).numpy() for c, v in sample.images.items()},
        action_mask=sample.action_mask,
    )  # fmt: skip
    a, b = batcher.robot_batch([sample]), batcher.robot_batch([cached])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stage1_and_stage2_batches(batcher, parts):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 96, 128, 3), dtype=np.uint8)
    video = batcher.video_batch([VideoSample("a person opens a drawer", frames)])
    loss, metrics = parts.model(video)
    assert torch.isfinite(loss) and metrics["action_loss"] == 0.0
    trajectory = TrajectorySample(
        "a person opens a drawer",
        states=rng.normal(size=(3, 6)).astype(np.float32),
        trajectories=rng.normal(size=(3, 20, 6)).astype(np.float32),
        frames=frames,
    )
    batch = batcher.trajectory_batch([trajectory], trajectory_vae=parts.action_vae)
    assert batch["action_targets"].shape == (3, parts.model.config.action_latent_dim)
    loss, metrics = parts.model(batch)
    assert torch.isfinite(loss) and metrics["action_loss"] > 0


def _train(model, batches, optimizer) -> None:
    model.train()
    for batch in batches:
        optimizer.zero_grad()
        loss, _ = model(batch)
        loss.backward()
        optimizer.step()


def test_two_steps_then_resume_equals_four_steps(batcher, parts, tmp_path):
    batches = [batcher.robot_batch([_robot_sample(10 + i)]) for i in range(4)]
    initial = {k: v.clone() for k, v in parts.model.state_dict().items()}

    def fresh() -> tuple[RynnVLAModel, torch.optim.Optimizer]:
        model = RynnVLAModel(parts.model.config)
        model.load_state_dict(initial)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    torch.manual_seed(123)
    straight, opt = fresh()
    _train(straight, batches, opt)

    torch.manual_seed(123)
    first, opt = fresh()
    _train(first, batches[:2], opt)
    save_file(
        {k: v.contiguous() for k, v in first.state_dict().items()}, tmp_path / "m.safetensors"
    )
    torch.save({"optimizer": opt.state_dict(), "rng": torch.get_rng_state()}, tmp_path / "state.pt")
    del first, opt

    torch.manual_seed(999)  # the resumed process starts from another RNG state
    resumed, opt = fresh()
    resumed.load_state_dict(load_file(tmp_path / "m.safetensors"))
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    _train(resumed, batches[2:], opt)

    expected = straight.state_dict()
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert not torch.equal(expected["action_head.weight"], initial["action_head.weight"])
