"""ActionVAE (rynnvla_policy.core.action_vae): shapes, loss, training, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F

from rynnvla_policy.core.action_vae import (
    ACTION_VAE_PRESETS,
    ActionVAE,
    ActionVAEConfig,
    ActionVAELoadError,
    get_action_vae_preset,
    sinusoid_table,
)

# Smaller than the "tiny" preset: these tests only need the code paths.
MICRO = ActionVAEConfig(
    action_dim=6,
    chunk_length=8,
    hidden_dim=32,
    latent_dim=4,
    encoder_layers=2,
    decoder_encoder_layers=1,
    decoder_layers=2,
    num_heads=4,
    ffn_dim=48,
)


def _model(config: ActionVAEConfig = MICRO, seed: int = 0) -> ActionVAE:
    torch.manual_seed(seed)
    return ActionVAE(config).eval()


def _chunks(batch: int, config: ActionVAEConfig = MICRO, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, config.chunk_length, config.action_dim, generator=generator)


# ---- config ----------------------------------------------------------------------------------
def test_config_validation_names_field_and_value():
    with pytest.raises(ValueError, match=r"hidden_dim must be a positive int, got 0"):
        ActionVAEConfig(action_dim=6, hidden_dim=0)
    with pytest.raises(ValueError, match=r"hidden_dim \(30\) must be divisible by num_heads \(8\)"):
        ActionVAEConfig(action_dim=6, hidden_dim=30)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        ActionVAEConfig(action_dim=6, dropout=1.5)
    with pytest.raises(ValueError, match=r"activation .* got 'tanh'"):
        ActionVAEConfig(action_dim=6, activation="tanh")
    with pytest.raises(ValueError, match=r"action_dim must be a positive int, got True"):
        ActionVAEConfig(action_dim=True)


def test_presets_and_overrides():
    assert get_action_vae_preset("rynnvla-7b") == ActionVAEConfig(action_dim=6)
    tiny = get_action_vae_preset("tiny", action_dim=14, dropout=0.0)
    assert tiny.action_dim == 14 and tiny.hidden_dim == ACTION_VAE_PRESETS["tiny"].hidden_dim
    with pytest.raises(KeyError, match=r"did you mean \['tiny'\]"):
        get_action_vae_preset("tiyn")
    with pytest.raises(ValueError, match=r"unknown ActionVAEConfig field\(s\) \['hidden'\]"):
        get_action_vae_preset("tiny", hidden=64)
    assert ActionVAEConfig.from_dict(tiny.to_dict()) == tiny
    with pytest.raises(ValueError, match="unknown ActionVAEConfig field"):
        ActionVAEConfig.from_dict({**tiny.to_dict(), "extra": 1})


def test_7b_preset_has_about_72m_parameters():
    with torch.device("meta"):
        model = ActionVAE(get_action_vae_preset("rynnvla-7b"))
    # Published: "about 72M". The reference module also holds two unused heads (4,097 more).
    assert model.num_parameters() == 72_427_974


def test_sinusoid_table_values():
    table = sinusoid_table(21, 512)
    assert table.shape == (21, 512) and table.dtype == torch.float32
    assert table[3, 10] == pytest.approx(torch.sin(torch.tensor(3 / 10000 ** (10 / 512))).item())
    assert table[3, 11] == pytest.approx(torch.cos(torch.tensor(3 / 10000 ** (10 / 512))).item())


# ---- shapes and loss ---------------------------------------------------------------------------
def test_shapes_and_deterministic_mean_decode():
    model = _model()
    actions = _chunks(3)
    params = model.encode(actions)
    assert params.shape == (3, 2 * MICRO.latent_dim)
    decoded = model.decode_params(params)
    assert decoded.shape == (3, MICRO.chunk_length, MICRO.action_dim)
    torch.testing.assert_close(decoded, model.decode(params[:, : MICRO.latent_dim]))
    sampled = [
        model.decode_params(params, sample=True, generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    torch.testing.assert_close(sampled[0], sampled[1])
    assert not torch.allclose(sampled[0], decoded)


def test_inputs_are_validated():
    model = _model()
    with pytest.raises(ValueError, match=r"actions must be a \(B, 8, 6\) tensor, got \(2, 9, 6\)"):
        model.encode(torch.zeros(2, 9, 6))
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        model.encode(torch.zeros(2, 8, 6), torch.ones(2, 8))
    with pytest.raises(ValueError, match=r"z must be a \(B, 4\) tensor, got \(2, 8\)"):
        model.decode(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="no valid step"):
        model(torch.zeros(2, 8, 6), torch.zeros(2, 8, dtype=torch.bool))


def test_masked_steps_do_not_affect_encoding_or_loss():
    model = _model()
    actions = _chunks(4)
    mask = torch.ones(4, MICRO.chunk_length, dtype=torch.bool)
    mask[0, 5:] = False
    mask[2, 1:] = False
    changed = actions.clone()
    changed[~mask] += 100.0  # garbage in the padded steps only
    torch.testing.assert_close(model.encode(changed, mask), model.encode(actions, mask))
    loss, metrics = model(actions, mask)
    loss_changed, _ = model(changed, mask)
    assert loss_changed.item() == loss.item()
    assert model(changed)[0].item() > 10 * loss.item()  # without the mask the garbage counts
    # L1 is the mean over valid elements only, KL is summed over dims and averaged over batch.
    mu, logvar = model.encode(actions, mask).chunk(2, dim=-1)
    error = (model.decode(mu) - actions).abs()
    assert metrics["l1"] == pytest.approx(error[mask].mean().item(), rel=1e-5)
    kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp())).sum(-1).mean()
    assert metrics["kl"] == pytest.approx(kl.item(), rel=1e-5)
    assert loss.item() == pytest.approx(metrics["l1"] + MICRO.kl_weight * metrics["kl"], rel=1e-6)


def _smooth_chunks(batch: int, config: ActionVAEConfig, seed: int) -> torch.Tensor:
    """Sine-wave joint trajectories with random amplitude, frequency and phase (B, T, D)."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, 1, config.action_dim)
    time = torch.linspace(0.0, 1.0, config.chunk_length)[None, :, None]  # (1, T, 1)
    frequency = 0.5 + 1.5 * torch.rand(shape, generator=generator)
    phase = 2 * math.pi * torch.rand(shape, generator=generator)
    amplitude = 0.5 + torch.rand(shape, generator=generator)
    return amplitude * torch.sin(2 * math.pi * frequency * time + phase)


@pytest.fixture
def one_thread():
    """One intra-op thread: on 2 shared cores, 2 threads made this training loop 5-10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_tiny_vae_overfits_a_few_chunks(one_thread):
    config = get_action_vae_preset("tiny", dropout=0.0)
    model = _model(config).train()
    actions = _smooth_chunks(4, config, seed=3)
    mask = torch.ones(4, config.chunk_length, dtype=torch.bool)
    mask[1, 12:] = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = []
    for _ in range(100):
        loss, metrics = model(actions, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(metrics["l1"])
    assert history[-1] < 0.3 * history[0], history[::10]  # seen: 0.76 -> 0.16


def test_pre_norm_variant_runs_and_trains():
    config = dataclasses.replace(MICRO, pre_norm=True, activation="gelu", dropout=0.0)
    model = _model(config).train()
    loss, _ = model(_chunks(2, config))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert "encoder.norm.weight" in model.reference_state_dict()


# ---- our checkpoint format ----------------------------------------------------------------------
def test_save_then_load_decodes_bit_identically(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path / "vae")
    loaded = ActionVAE.from_pretrained(tmp_path / "vae")
    assert loaded.config == model.config and not loaded.training
    actions = _chunks(3)
    params = model.encode(actions)
    assert torch.equal(loaded.encode(actions), params)
    assert torch.equal(loaded.decode_params(params), model.decode_params(params))
    saved = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert saved["model_type"] == "rynnvla_action_vae" and saved["latent_dim"] == 4


def test_bf16_checkpoint_loads_in_bf16(tmp_path):
    model = _model().to(torch.bfloat16)
    model.save_pretrained(tmp_path / "vae")
    loaded = ActionVAE.from_pretrained(tmp_path / "vae")
    assert loaded.decoder.action_head.weight.dtype == torch.bfloat16
    z = torch.randn(2, MICRO.latent_dim)
    assert torch.equal(loaded.decode(z), model.decode(z))


def test_mismatched_or_corrupt_checkpoints_name_key_and_shape(tmp_path):
    _model().save_pretrained(tmp_path / "a")
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "a" / "config.json").write_text(json.dumps({**config, "chunk_length": 10}))
    with pytest.raises(
        ActionVAELoadError,
        match=r"key 'decoder\.query_embed': checkpoint shape \(8, 32\) != model shape \(10, 32\)",
    ):
        ActionVAE.from_pretrained(tmp_path / "a")
    _model().save_pretrained(tmp_path / "b")
    (tmp_path / "b" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00garbage")
    with pytest.raises(ActionVAELoadError, match=r"model\.safetensors: unreadable safetensors"):
        ActionVAE.from_pretrained(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        ActionVAE.from_pretrained(tmp_path / "missing")


# ---- reference checkpoints ---------------------------------------------------------------------
def _reference_keys(encoder_layers: int, decoder_encoder_layers: int, decoder_layers: int):
    """The state_dict keys of the reference ActionVAE (post-norm), as read from its source."""
    attention = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    linear = ["weight", "bias"]
    encoder_layer = [f"self_attn.{p}" for p in attention] + [
        f"{m}.{p}" for m in ("linear1", "linear2", "norm1", "norm2") for p in linear
    ]
    decoder_layer = [f"{a}.{p}" for a in ("self_attn", "multihead_attn") for p in attention] + [
        f"{m}.{p}" for m in ("linear1", "linear2", "norm1", "norm2", "norm3") for p in linear
    ]
    keys = {"pos_table", "cls_embed.weight", "pos.weight", "query_embed.weight"}
    for module in ("action_head", "is_pad_head", "encoder_action_proj", "encoder_joint_proj"):
        keys |= {f"{module}.{p}" for p in linear}
    keys |= {f"{m}.{p}" for m in ("latent_proj", "latent_out_proj") for p in linear}
    keys |= {f"transformer.decoder.norm.{p}" for p in linear}
    for prefix, count, parts in (
        ("encoder.layers", encoder_layers, encoder_layer),
        ("transformer.encoder.layers", decoder_encoder_layers, encoder_layer),
        ("transformer.decoder.layers", decoder_layers, decoder_layer),
    ):
        keys |= {f"{prefix}.{i}.{part}" for i in range(count) for part in parts}
    return keys


def _ref_attention(sd, prefix, query, key, value, heads, padding=None):
    return F.multi_head_attention_forward(
        query, key, value, query.shape[-1], heads,
        sd[prefix + "in_proj_weight"], sd[prefix + "in_proj_bias"], None, None, False, 0.0,
        sd[prefix + "out_proj.weight"], sd[prefix + "out_proj.bias"],
        training=False, key_padding_mask=padding, need_weights=False,
    )[0]  # fmt: skip


def _ref_norm(sd, prefix, x):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + "weight"], sd[prefix + "bias"])


def _ref_ffn(sd, prefix, x):
    hidden = F.relu(F.linear(x, sd[prefix + "linear1.weight"], sd[prefix + "linear1.bias"]))
    return F.linear(hidden, sd[prefix + "linear2.weight"], sd[prefix + "linear2.bias"])


def _ref_encoder_layer(sd, prefix, src, pos, heads, padding=None):
    """Post-norm DETR encoder layer, sequence-first (S, B, H) like the reference."""
    q = src + pos
    src = _ref_norm(sd, prefix + "norm1.", src + _ref_attention(
        sd, prefix + "self_attn.", q, q, src, heads, padding))  # fmt: skip
    return _ref_norm(sd, prefix + "norm2.", src + _ref_ffn(sd, prefix, src))


def _ref_decoder_layer(sd, prefix, tgt, memory, pos, query_pos, heads):
    q = tgt + query_pos
    tgt = _ref_norm(sd, prefix + "norm1.", tgt + _ref_attention(
        sd, prefix + "self_attn.", q, q, tgt, heads))  # fmt: skip
    keys = torch.cat([tgt + query_pos, memory + pos], dim=0)
    values = torch.cat([tgt, memory], dim=0)
    tgt = _ref_norm(sd, prefix + "norm2.", tgt + _ref_attention(
        sd, prefix + "multihead_attn.", tgt + query_pos, keys, values, heads))  # fmt: skip
    return _ref_norm(sd, prefix + "norm3.", tgt + _ref_ffn(sd, prefix, tgt))


def _count(sd, prefix):
    return len({key[len(prefix) :].split(".")[0] for key in sd if key.startswith(prefix)})


def _reference_encode(sd, actions, is_pad, heads):
    """The reference ActionVAE encoder, written from its source, on a reference state_dict."""
    batch = actions.shape[0]
    embedded = F.linear(actions, sd["encoder_action_proj.weight"], sd["encoder_action_proj.bias"])
    cls = sd["cls_embed.weight"][None].repeat(batch, 1, 1)  # (B, 1, H)
    x = torch.cat([cls, embedded], dim=1).permute(1, 0, 2)  # (1 + T, B, H)
    padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool), is_pad], dim=1)
    pos = sd["pos_table"].permute(1, 0, 2)  # (1 + T, 1, H)
    for i in range(_count(sd, "encoder.layers.")):
        x = _ref_encoder_layer(sd, f"encoder.layers.{i}.", x, pos, heads, padding)
    return F.linear(x[0], sd["latent_proj.weight"], sd["latent_proj.bias"])


def _reference_decode(sd, z, heads):
    """The reference ActionVAE decoder (latent -> chunk), sequence-first like its source."""
    src = F.linear(z, sd["latent_out_proj.weight"], sd["latent_out_proj.bias"])[None]  # (1, B, H)
    pos = sd["pos.weight"][:, None]  # (1, 1, H)
    query_pos = sd["query_embed.weight"][:, None]  # (T, 1, H)
    tgt = src.repeat(query_pos.shape[0], 1, 1)  # (T, B, H)
    memory = src
    for i in range(_count(sd, "transformer.encoder.layers.")):
        memory = _ref_encoder_layer(sd, f"transformer.encoder.layers.{i}.", memory, pos, heads)
    for i in range(_count(sd, "transformer.decoder.layers.")):
        prefix = f"transformer.decoder.layers.{i}."
        tgt = _ref_decoder_layer(sd, prefix, tgt, memory, pos, query_pos, heads)
    out = _ref_norm(sd, "transformer.decoder.norm.", tgt)
    return F.linear(out, sd["action_head.weight"], sd["action_head.bias"]).transpose(0, 1)


def test_reference_layout_has_the_reference_keys():
    state = _model().reference_state_dict()
    assert set(state) == _reference_keys(2, 1, 2)
    assert state["pos_table"].shape == (1, 1 + MICRO.chunk_length, MICRO.hidden_dim)


def test_model_computes_what_the_reference_computes():
    model = _model()
    state = model.reference_state_dict()
    actions = _chunks(3)
    mask = torch.ones(3, MICRO.chunk_length, dtype=torch.bool)
    mask[1, 6:] = False
    with torch.no_grad():
        params = model.encode(actions, mask)
        expected = _reference_encode(state, actions, ~mask, MICRO.num_heads)
        torch.testing.assert_close(params, expected, rtol=1e-5, atol=1e-5)
        mu = params[:, : MICRO.latent_dim]
        expected_chunk = _reference_decode(state, mu, MICRO.num_heads)
        torch.testing.assert_close(model.decode(mu), expected_chunk, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ddp_prefix", ["", "module."])
def test_reference_state_dict_loads_and_decodes_identically(tmp_path, ddp_prefix):
    model = _model()
    state = {ddp_prefix + key: value for key, value in model.reference_state_dict().items()}
    torch.save(state, tmp_path / "step_1000.pt")
    loaded = ActionVAE.load_reference_state_dict(tmp_path / "step_1000.pt", MICRO)
    actions = _chunks(2)
    params = model.encode(actions)
    assert torch.equal(loaded.encode(actions), params)
    assert torch.equal(loaded.decode_params(params), model.decode_params(params))


def test_reference_state_dict_errors_name_key_and_shapes(tmp_path):
    state = _model().reference_state_dict()
    bad = {**state, "query_embed.weight": torch.zeros(5, 32)}
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(
        ActionVAELoadError,
        match=r"key 'query_embed\.weight': checkpoint shape \(5, 32\) != model shape \(8, 32\)",
    ):
        ActionVAE.load_reference_state_dict(tmp_path / "shape.pt", MICRO)
    missing = {k: v for k, v in state.items() if k != "transformer.decoder.norm.bias"}
    torch.save({**missing, "backbone.conv.weight": torch.zeros(2, 3)}, tmp_path / "keys.pt")
    with pytest.raises(ActionVAELoadError) as error:
        ActionVAE.load_reference_state_dict(tmp_path / "keys.pt", MICRO)
    assert "missing key 'transformer.decoder.norm.bias' (model expects shape (32,))" in str(
        error.value
    )
    assert "unexpected key 'backbone.conv.weight' (checkpoint shape (2, 3))" in str(error.value)
    torch.save({**state, "latent_proj.bias": torch.full((8,), float("nan"))}, tmp_path / "nan.pt")
    with pytest.raises(ActionVAELoadError, match=r"'latent_proj\.bias' is not finite"):
        ActionVAE.load_reference_state_dict(tmp_path / "nan.pt", MICRO)
    (tmp_path / "corrupt.pt").write_bytes(b"not a torch file")
    with pytest.raises(ActionVAELoadError, match=r"corrupt\.pt: cannot read"):
        ActionVAE.load_reference_state_dict(tmp_path / "corrupt.pt", MICRO)
    torch.save({"weights": dataclasses.replace(MICRO)}, tmp_path / "object.pt")
    with pytest.raises(ActionVAELoadError, match=r"object\.pt: cannot read as a weights-only"):
        ActionVAE.load_reference_state_dict(tmp_path / "object.pt", MICRO)
