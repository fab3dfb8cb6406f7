"""Published formats: RynnVLA-001 HF directories, Chameleon VQGAN ckpt + yaml, and the whole
set assembled into our checkpoint, all written here in the published on-disk layout."""

from __future__ import annotations

import fractions
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rynnvla_policy.core import Checkpoint, CheckpointError, PolicyRunner
from rynnvla_policy.core.published import (
    assemble_checkpoint,
    load_chameleon_vqgan,
    load_published_model,
    save_chameleon_vqgan,
    save_published_model,
)


@pytest.fixture(scope="module")
def parts(tiny_checkpoint) -> Checkpoint:
    ckpt = Checkpoint.from_pretrained(tiny_checkpoint)
    # Give the q/k norms non-trivial values that every head shares, as a model-parallel-1
    # reference checkpoint has them, so the [1, head_dim] storage is exercised for real.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in ckpt.model.model.layers:
            for norm in (layer.self_attn.q_norm, layer.self_attn.k_norm):
                norm.weight.copy_(1 + 0.1 * torch.randn(norm.weight.shape[1:], generator=gen))
                norm.bias.copy_(0.1 * torch.randn(norm.bias.shape[1:], generator=gen))
    return ckpt


def _prompt(model) -> tuple[torch.Tensor, torch.Tensor]:
    tok = model.config.tokens
    ids = torch.randint(4, tok.action_id, (1, 30), generator=torch.Generator().manual_seed(2))
    ids[0, 5], ids[0, 20], ids[0, -1] = tok.wrist_start_id, tok.wrist_end_id, tok.state_id
    return ids, torch.randn(1, model.config.state_dim)


def test_published_layout_loads_and_predicts_the_same(parts, tmp_path):
    directory = save_published_model(parts.model, tmp_path / "hf", shard_layers=2)
    stored = load_file(str(tmp_path / "hf" / "model-00001.safetensors"))
    assert stored["model.layers.0.self_attn.q_norm.weight"].shape == (1, 64)  # [1, head_dim]
    assert (directory / "model.safetensors.index.json").is_file()
    model, report = load_published_model(directory, parts.model.config)
    assert report.initialised == [] and report.resized == {}
    assert len(report.expanded) == 4 * 4  # q/k x weight/bias x 4 layers
    ids, states = _prompt(model)
    expected = parts.model.predict_action_params(ids, states)
    torch.testing.assert_close(model.predict_action_params(ids, states), expected, rtol=0, atol=0)


def test_vocabulary_without_vla_tokens_is_resized(parts, tmp_path):
    vocab = parts.model.config.tokens.vocab_size
    directory = save_published_model(parts.model, tmp_path / "hf", vocab_size=vocab - 4)
    model, report = load_published_model(directory, parts.model.config)
    assert report.resized["lm_head.weight"] == ((vocab - 4, 192), (vocab, 192))
    embed = model.model.embed_tokens.weight
    original = parts.model.model.embed_tokens.weight
    assert torch.equal(embed[: vocab - 4], original[: vocab - 4])
    torch.testing.assert_close(embed[vocab - 1], original[: vocab - 4].mean(0))


def test_missing_heads_are_initialised_and_reported(parts, tmp_path):
    directory = save_published_model(parts.model, tmp_path / "hf", include_heads=False)
    _model, report = load_published_model(directory, parts.model.config)
    assert sorted(report.initialised) == sorted(
        [
            "state_projection.weight",
            "state_projection.bias",
            "action_head.weight",
            "action_head.bias",
        ]
    )
    assert "initialised" in report.summary()


def test_extra_reference_keys_are_skipped(parts, tmp_path):
    directory = save_published_model(parts.model, tmp_path / "hf")
    tensors = load_file(str(directory / "model.safetensors"))
    tensors["model.vqmodel.quant_conv.weight"] = torch.zeros(2, 2, 1, 1)
    tensors["action_projection.weight"] = torch.zeros(192, 64)
    save_file(tensors, str(directory / "model.safetensors"))
    _model, report = load_published_model(directory, parts.model.config)
    assert sorted(report.skipped) == ["action_projection.weight", "model.vqmodel.quant_conv.weight"]


def test_bad_q_norm_shape_names_the_key(parts, tmp_path):
    directory = save_published_model(parts.model, tmp_path / "hf")
    tensors = load_file(str(directory / "model.safetensors"))
    tensors["model.layers.1.self_attn.q_norm.weight"] = torch.ones(2, 64)
    save_file(tensors, str(directory / "model.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"layers\.1\.self_attn\.q_norm\.weight: shape \(2, 64\)"
    ):
        load_published_model(directory, parts.model.config)


def test_unsupported_configs_are_rejected(parts, tmp_path):
    directory = save_published_model(parts.model, tmp_path / "hf")
    config = json.loads((directory / "config.json").read_text())
    config["rope_scaling"] = {"type": "linear", "factor": 2.0}
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="RoPE scaling"):
        load_published_model(directory, parts.model.config)


def test_vqgan_ckpt_and_yaml_round_trip(parts, tmp_path):
    save_chameleon_vqgan(parts.image_tokenizer, tmp_path / "vqgan.ckpt", tmp_path / "vqgan.yaml")
    # The taming checkpoint also holds the decoder and loss weights: they are skipped.
    data = torch.load(tmp_path / "vqgan.ckpt", weights_only=True)
    data["state_dict"]["decoder.conv_in.weight"] = torch.zeros(1)
    data["state_dict"]["loss.discriminator.main.0.weight"] = torch.zeros(1)
    torch.save(data, tmp_path / "vqgan.ckpt")
    cfg = parts.image_tokenizer.config
    loaded = load_chameleon_vqgan(
        tmp_path / "vqgan.ckpt", tmp_path / "vqgan.yaml", cfg.short_side, cfg.crop_multiple
    )
    assert loaded.config == cfg
    pixels = torch.rand(2, 3, 64, 80) * 2 - 1
    assert torch.equal(loaded.encode(pixels), parts.image_tokenizer.encode(pixels))


def test_pickled_objects_are_refused(parts, tmp_path):
    save_chameleon_vqgan(parts.image_tokenizer, tmp_path / "vqgan.ckpt", tmp_path / "vqgan.yaml")
    torch.save({"state_dict": {}, "callback": fractions.Fraction(1, 3)}, tmp_path / "evil.ckpt")
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_chameleon_vqgan(tmp_path / "evil.ckpt", tmp_path / "vqgan.yaml")


def test_assembled_published_parts_act_like_the_original(parts, tmp_path, make_observation):
    save_published_model(parts.model, tmp_path / "hf")
    save_chameleon_vqgan(parts.image_tokenizer, tmp_path / "vqgan.ckpt", tmp_path / "vqgan.yaml")
    parts.processor.text_tokenizer.save(tmp_path / "text_tokenizer.json")
    stats = {**parts.processor.statistics.to_dict(), "task_data": {"pick": 1}}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    assembled, report = assemble_checkpoint(
        model_dir=tmp_path / "hf",
        vqgan_ckpt=tmp_path / "vqgan.ckpt",
        vqgan_yaml=tmp_path / "vqgan.yaml",
        text_tokenizer_json=tmp_path / "text_tokenizer.json",
        statistics_json=tmp_path / "stats.json",
        action_vae=parts.action_vae,
        features=parts.processor.config,
        base_config=parts.model.config,
    )
    assert report.initialised == []
    ours = assembled.save_pretrained(tmp_path / "ours")
    obs = make_observation(seed=4)
    expected = PolicyRunner(parts).infer(obs)
    got = PolicyRunner.from_pretrained(ours).infer(obs)
    np.testing.assert_array_equal(got.positions, expected.positions)
