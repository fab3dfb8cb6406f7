"""Every stage's tiny preset trains on real generated data (a converted LeRobot v3 dataset,
simulator hand clips), lowers its loss on a fixed batch, and its product feeds the next stage.
The stage-3 product is a checkpoint `PolicyRunner.from_pretrained` runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stage_runs import run_stage

from rynnvla_training.dataset import LeRobotV3Dataset

FAST = ["optim.warmup_steps=0", "optim.schedule=constant", "checkpoint.every_steps=0"]


@pytest.fixture(scope="session")
def robot_vae(tmp_path_factory, converted_dataset):
    return run_stage(
        "vae",
        tmp_path_factory.mktemp("vae"),
        [
            *FAST,
            f"data.lerobot_roots=[{converted_dataset}]",
            "loop.max_steps=30",
            "loop.micro_batch_size=16",
            "optim.lr=2e-3",
        ],
    )


@pytest.fixture(scope="session")
def human_vae(tmp_path_factory, human_manifest):
    return run_stage(
        "vae",
        tmp_path_factory.mktemp("human_vae"),
        [
            *FAST,
            "data.embodiment=human",
            f"data.manifests=[{human_manifest}]",
            "loop.max_steps=30",
            "loop.micro_batch_size=16",
            "optim.lr=2e-3",
        ],
    )


@pytest.fixture(scope="session")
def vqgan(tmp_path_factory, converted_dataset, human_manifest):
    return run_stage(
        "vqgan",
        tmp_path_factory.mktemp("vqgan"),
        [
            *FAST,
            f"data.lerobot_roots=[{converted_dataset}]",
            f"data.manifests=[{human_manifest}]",
            "data.crop=32",
            "data.frames_per_sample=2",
            "model.kmeans_init_frames=16",
            "loop.max_steps=12",
            "loop.micro_batch_size=2",
            "optim.lr=2e-3",
        ],
    )


@pytest.fixture(scope="session")
def stage1(tmp_path_factory, human_manifest, vqgan):
    return run_stage(
        "stage1",
        tmp_path_factory.mktemp("stage1"),
        [
            *FAST,
            f"data.manifests=[{human_manifest}]",
            "data.frames=2",
            f"model.image_tokenizer={vqgan.final}",
            "loop.max_steps=12",
            "loop.micro_batch_size=2",
            "optim.lr=2e-3",
        ],
    )


@pytest.fixture(scope="session")
def stage2(tmp_path_factory, human_manifest, human_vae, stage1):
    return run_stage(
        "stage2",
        tmp_path_factory.mktemp("stage2"),
        [
            *FAST,
            f"data.manifests=[{human_manifest}]",
            "data.frames=2",
            f"model.action_vae={human_vae.final}",
            f"init={stage1.final}",
            "loop.max_steps=12",
            "loop.micro_batch_size=2",
            "optim.lr=2e-3",
        ],
    )


@pytest.fixture(scope="session")
def stage3(tmp_path_factory, converted_dataset, robot_vae, stage2):
    return run_stage(
        "stage3",
        tmp_path_factory.mktemp("stage3"),
        [
            *FAST,
            f"data.lerobot_roots=[{converted_dataset}]",
            f"model.action_vae={robot_vae.final}",
            f"init={stage2.final}",
            "loop.max_steps=12",
            "loop.micro_batch_size=2",
            "optim.lr=2e-3",
            "log.tensorboard=true",
            "log.preview_every_steps=12",
        ],
    )


def _lowered(run, factor: float) -> None:
    assert np.isfinite(run.result.losses).all()
    assert run.loss_after < factor * run.loss_before, (run.loss_before, run.loss_after)


def test_robot_vae_lowers_its_loss_and_saves_its_normalisation(robot_vae, converted_dataset):
    _lowered(robot_vae, 0.9)
    final = robot_vae.final
    spec = json.loads((final / "action_spec.json").read_text())
    assert spec["embodiment"] == "robot" and spec["absolute_dims"] == [5]
    saved = json.loads((final / "statistics.json").read_text())
    block = LeRobotV3Dataset(converted_dataset).processor_statistics()
    np.testing.assert_allclose(saved["rel_std_action"], block["rel_std_action"])


def test_human_vae_lowers_its_loss(human_vae):
    _lowered(human_vae, 0.9)
    spec = json.loads((human_vae.final / "action_spec.json").read_text())
    assert spec["embodiment"] == "human" and spec["absolute_dims"] == []


def test_vqgan_lowers_its_reconstruction_loss_and_saves_a_decoder(vqgan):
    _lowered(vqgan, 0.8)
    assert (vqgan.final / "decoder.safetensors").is_file()
    from rynnvla_policy.core.checkpoint import load_image_tokenizer

    load_image_tokenizer(vqgan.final)  # the model core reads it


def test_stage1_lowers_its_frame_prediction_loss(stage1):
    _lowered(stage1, 0.9)
    final = stage1.final
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in final.iterdir()
    }


def test_stage2_starts_from_stage1_and_lowers_its_loss(stage2):
    _lowered(stage2, 0.9)
    assert "init: ours" in stage2.parts.description


def test_stage3_from_stage2_lowers_its_loss_and_runs_as_a_policy(stage3, converted_dataset):
    _lowered(stage3, 0.9)
    assert "init: ours" in stage3.parts.description
    assert "re-initialised ['state_projection.weight']" in stage3.parts.description
    from rynnvla_policy.core import Observation, PolicyRunner

    runner = PolicyRunner.from_pretrained(stage3.final)
    assert runner.contract.camera_names == ("front", "wrist")
    assert runner.contract.chunk_length == 20
    block = LeRobotV3Dataset(converted_dataset).processor_statistics()
    np.testing.assert_allclose(
        runner.processor.statistics.rel_mean_action, block["rel_mean_action"]
    )
    chunk = runner.infer(
        Observation(
            images={c: np.zeros((48, 64, 3), np.uint8) for c in ("front", "wrist")},
            state=np.zeros(6),
            instruction="put the green block on the plate",
        )
    )
    assert chunk.positions.shape == (20, 6) and np.isfinite(chunk.positions).all()


def test_stage3_writes_previews_and_tensorboard(stage3):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output = stage3.final.parent
    assert (output / "previews" / "step_00000012.png").is_file()
    events = EventAccumulator(str(output / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for term in ("loss", "ce_loss", "action_loss", "z_loss", "lr", "samples_per_s"):
        assert f"train/{term}" in scalars
    assert "preview/predicted_vs_true" in events.Tags()["images"]


def test_stage3_starts_from_a_released_checkpoint_directory(tmp_path, converted_dataset, robot_vae):
    """A RynnVLA-001-style HF directory (Chameleon keys, no VLA heads), with the text and
    image tokenizers given separately as for the 7B release."""
    from rynnvla_policy.core.checkpoint import Checkpoint
    from rynnvla_policy.core.published import save_published_model
    from rynnvla_policy.core.testing import make_tiny_checkpoint

    tiny = make_tiny_checkpoint(tmp_path / "tiny", image_size=(48, 64))
    released = save_published_model(
        Checkpoint.from_pretrained(tiny).model, tmp_path / "released", include_heads=False
    )
    run = run_stage(
        "stage3",
        tmp_path / "run",
        [
            *FAST,
            f"data.lerobot_roots=[{converted_dataset}]",
            f"init={released}",
            f"model.action_vae={robot_vae.final}",
            f"model.text_tokenizer={tiny}/tokenizer.json",
            f"model.image_tokenizer={tiny}/image_tokenizer",
            "loop.max_steps=2",
            "loop.micro_batch_size=2",
        ],
    )
    description = run.parts.description
    assert "init: published" in description
    for head in ("state_projection.weight", "action_head.weight"):
        assert head in description  # absent from the release: freshly initialised
    assert np.isfinite(run.result.losses).all()


def test_resume_of_a_real_stage_is_bit_exact(tmp_path, converted_dataset):
    """vae stage (reparameterisation noise + dropout: the RNG matters), one DataLoader worker:
    2 steps, stop, resume to 4 == 4 uninterrupted steps."""
    import torch
    from stage_runs import QUIET, SINGLE

    from rynnvla_training.train import checkpoint_io
    from rynnvla_training.train.rng import seed_everything
    from rynnvla_training.train.stages import STAGES, resolve_config
    from rynnvla_training.train.trainer import Trainer

    def fit(out, stop=None):
        config = resolve_config(
            "vae",
            "tiny",
            (),
            [
                *QUIET,
                f"output_dir={out}",
                f"data.lerobot_roots=[{converted_dataset}]",
                "loop.max_steps=4",
                "loop.micro_batch_size=8",
                "loop.num_workers=1",
                "checkpoint.every_steps=0",
            ],
        )
        seed_everything(config.loop.seed)
        return Trainer(config, STAGES.get("vae").build(config, SINGLE), SINGLE).fit(stop)

    straight = fit(tmp_path / "straight")
    fit(tmp_path / "resumed", stop=2)
    resumed = fit(tmp_path / "resumed")
    assert resumed.losses == straight.losses[2:]

    def weights(out):
        latest = checkpoint_io.latest_checkpoint(out / "checkpoints")
        return torch.load(latest / "state.pt", weights_only=True)

    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert a["scheduler"] == b["scheduler"]


def test_stage3_on_cached_codes_trains_exactly_like_encoding_each_sample(
    tmp_path, converted_dataset, robot_vae
):
    """Without colour jitter the frames' VQ codes are encoded once into the frame cache; the
    losses must be bit-identical to encoding every sample in the training step."""

    def run(name: str, cache_codes: bool):
        return run_stage(
            "stage3",
            tmp_path / name,
            [
                *FAST,
                f"data.lerobot_roots=[{converted_dataset}]",
                f"model.action_vae={robot_vae.final}",
                "data.color_jitter={brightness: 0, contrast: 0, saturation: 0, hue: 0}",
                f"data.cache_codes={str(cache_codes).lower()}",
                "loop.max_steps=3",
                "loop.micro_batch_size=2",
            ],
        )

    cached, encoded = run("cached", True), run("encoded", False)
    assert "cached VQ codes" in cached.parts.description
    assert "cached VQ codes" not in encoded.parts.description
    assert list((tmp_path / "cached" / "frame_cache").rglob("codes-*/front/*.npy"))
    assert cached.result.losses == encoded.result.losses
    assert cached.loss_after == encoded.loss_after


def test_export_each_puts_a_loadable_policy_in_every_checkpoint(
    tmp_path, converted_dataset, robot_vae
):
    """checkpoint.export_each: each saved step holds the stage's product (to compare
    checkpoints with `rynnvla-eval --direct`); the last one is the run's final policy."""
    from rynnvla_policy.core.runner import PolicyRunner

    run_stage(
        "stage3",
        tmp_path / "run",
        [
            *FAST[:2],
            f"data.lerobot_roots=[{converted_dataset}]",
            f"model.action_vae={robot_vae.final}",
            "checkpoint.every_steps=2",
            "checkpoint.export_each=true",
            "loop.max_steps=4",
            "loop.micro_batch_size=2",
        ],
    )
    root = tmp_path / "run"
    steps = sorted(p.name for p in (root / "checkpoints").iterdir())
    assert steps == ["step_00000002", "step_00000004"]
    for step in steps:
        runner = PolicyRunner.from_pretrained(root / "checkpoints" / step / "final")
        assert runner.contract.chunk_length == 20
        runner.close()
    last = (root / "checkpoints" / "step_00000004" / "final" / "model.safetensors").read_bytes()
    first = (root / "checkpoints" / "step_00000002" / "final" / "model.safetensors").read_bytes()
    assert last == (root / "final" / "model.safetensors").read_bytes() != first
    assert not list(root.rglob("*.partial"))
