"""Config dataclasses validate themselves; the preset registry rejects duplicates and hints."""

from __future__ import annotations

import pytest

from rynnvla_policy.core import (
    BackboneConfig,
    ConfigError,
    ImageTokenizerConfig,
    ProcessorConfig,
    RynnVLAConfig,
    TokenLayout,
    get_preset,
    list_presets,
    register_preset,
)


def test_published_defaults():
    preset = get_preset("rynnvla-7b")
    cfg = preset.model
    assert (cfg.backbone.hidden_size, cfg.backbone.num_hidden_layers) == (4096, 32)
    assert cfg.backbone.vocab_size == 65540
    assert (cfg.tokens.action_id, cfg.tokens.wrist_start_id) == (65536, 65537)
    assert (cfg.tokens.wrist_end_id, cfg.tokens.state_id) == (65538, 65539)
    assert (cfg.tokens.image_start_id, cfg.tokens.image_end_id) == (8197, 8196)
    assert cfg.tokens.newline_id == 8803
    assert cfg.tokens.size_token(12) == 8816  # <reserved08812>
    assert cfg.image.downsample == 16
    assert cfg.action_latent_dim == 64
    assert cfg.backbone.residual_dropout == 0.05
    assert cfg.loss.z_loss_weight == 1e-5


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: BackboneConfig(hidden_size=100, num_attention_heads=3), "hidden_size=100"),
        (lambda: BackboneConfig(residual_dropout=1.5), "residual_dropout=1.5"),
        (lambda: BackboneConfig(num_hidden_layers=0), "num_hidden_layers=0"),
        (lambda: ImageTokenizerConfig(crop_multiple=24), "crop_multiple=24"),
        (lambda: ImageTokenizerConfig(base_channels=48), "channel_multiplier"),
        (lambda: TokenLayout(state_id=70000), "state_id=70000"),
        (lambda: TokenLayout(state_id=65536), "state_id"),
        (lambda: TokenLayout(bos_id=10), "bos_id=10"),
        (lambda: ProcessorConfig(absolute_dims=(6,)), "absolute_dims=(6,)"),
        (lambda: ProcessorConfig(normalization="minmax"), "normalization='minmax'"),
        (lambda: ProcessorConfig(wrist_cameras=("hand",)), "wrist_cameras"),
        (lambda: RynnVLAConfig(action_latent_dim=63), "action_latent_dim=63"),
        (lambda: RynnVLAConfig(inference_history=5), "inference_history=5"),
    ],
)
def test_invalid_values_name_field_and_value(build, field):
    with pytest.raises(ConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_dict_round_trip_and_unknown_fields():
    cfg = get_preset("tiny").model
    assert RynnVLAConfig.from_dict(cfg.to_dict()) == cfg
    data = cfg.to_dict()
    data["backbone"]["hidden_sise"] = 3
    with pytest.raises(ConfigError, match="hidden_sise"):
        RynnVLAConfig.from_dict(data)


def test_registry_rejects_duplicates_and_suggests_near_misses():
    assert {"rynnvla-7b", "tiny", "small"} <= set(list_presets())
    with pytest.raises(ValueError, match="already registered"):
        register_preset("tiny", get_preset("tiny"))
    with pytest.raises(KeyError, match=r"did you mean \['tiny'\]"):
        get_preset("tiyn")


def test_tiny_preset_fits_the_token_budget():
    cfg = get_preset("tiny").model
    # 96x128 camera -> 64x85 -> crop 64x80 -> 8x10 codes -> 4 + 8 * 11 = 92 tokens per block.
    assert cfg.image.downsample == 8
    assert cfg.tokens.vocab_size == cfg.backbone.vocab_size
    assert cfg.tokens.state_id == cfg.tokens.vocab_size - 1
