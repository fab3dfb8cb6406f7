"""Named model presets: a registry of frozen configs (duplicate names rejected, near-miss hints).

- ``rynnvla-7b``: the published RynnVLA-001 dimensions (Chameleon-7B, vocab 65540, 4 x 384 px).
- ``small``: a ~30M-parameter model for a single consumer GPU experiments (96 px images).
- ``tiny``: a few M parameters that trains and runs on 2 CPU cores for the simulated arm
  (64 px short side, x8 VQ on a 256-code book, ~190 tokens per frame for 2 cameras).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .config import (
    BackboneConfig,
    ImageTokenizerConfig,
    LossConfig,
    ProcessorConfig,
    RynnVLAConfig,
    TokenLayout,
)


@dataclass(frozen=True)
class Preset:
    """A model config plus the ActionVAE preset name and text-tokenizer size it is meant for."""

    model: RynnVLAConfig
    processor: ProcessorConfig
    action_vae_preset: str
    text_vocab_size: int  # ids [0, text_vocab_size) belong to the text tokenizer file


_REGISTRY: dict[str, Preset] = {}


def register_preset(name: str, preset: Preset) -> None:
    if name in _REGISTRY:
        raise ValueError(f"preset {name!r} is already registered")
    if preset.model.name != name:
        raise ValueError(f"preset {name!r} holds a model config named {preset.model.name!r}")
    _REGISTRY[name] = preset


def get_preset(name: str) -> Preset:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise KeyError(f"unknown preset {name!r}{hint} (known: {sorted(_REGISTRY)})") from None


def list_presets() -> list[str]:
    return sorted(_REGISTRY)


def small_token_layout(text_vocab_size: int, codebook_size: int) -> TokenLayout:
    """Token layout of the small presets, mirroring Chameleon's order.

    ``[0..3]`` <s> <pad> </s> <unk>, then the image codes, then <eoss> (image end),
    <racm3:break> (image start), a newline and the size tokens; text BPE tokens fill the rest
    of ``[0, text_vocab_size)``; the four VLA tokens follow, as in the 7B vocabulary.
    """
    offset = 4
    end = offset + codebook_size
    return TokenLayout(
        bos_id=0,
        pad_id=1,
        image_code_offset=offset,
        codebook_size=codebook_size,
        image_end_id=end,
        image_start_id=end + 1,
        newline_id=end + 2,
        size_token_base=end + 3,
        max_size_grids=SMALL_MAX_SIZE_GRIDS,
        action_id=text_vocab_size,
        wrist_start_id=text_vocab_size + 1,
        wrist_end_id=text_vocab_size + 2,
        state_id=text_vocab_size + 3,
        vocab_size=text_vocab_size + 4,
    )


SMALL_MAX_SIZE_GRIDS = 32


def reserved_token_count(layout: TokenLayout) -> int:
    """Ids below this number are special/image/size tokens; text BPE tokens start here."""
    return layout.size_token_base + layout.max_size_grids + 1


def _register_defaults() -> None:
    register_preset(
        "rynnvla-7b",
        Preset(
            model=RynnVLAConfig(
                name="rynnvla-7b",
                backbone=BackboneConfig(residual_dropout=0.05),
                train_frames=4,
            ),
            processor=ProcessorConfig(),
            action_vae_preset="rynnvla-7b",
            text_vocab_size=65536,
        ),
    )
    tiny_text, tiny_codes = 512, 256
    tiny_layout = small_token_layout(tiny_text, tiny_codes)
    register_preset(
        "tiny",
        Preset(
            model=RynnVLAConfig(
                name="tiny",
                backbone=BackboneConfig(
                    vocab_size=tiny_layout.vocab_size,
                    hidden_size=192,
                    intermediate_size=512,
                    num_hidden_layers=4,
                    num_attention_heads=3,
                    num_key_value_heads=3,
                    max_position_embeddings=1024,
                    residual_dropout=0.05,
                ),
                tokens=tiny_layout,
                image=ImageTokenizerConfig(
                    codebook_size=tiny_codes,
                    embed_dim=32,
                    latent_channels=64,
                    base_channels=32,
                    channel_multiplier=(1, 1, 2, 2),
                    num_res_blocks=1,
                    resolution=64,
                    short_side=64,
                    crop_multiple=16,
                ),
                loss=LossConfig(),
                state_dim=6,
                action_latent_dim=64,
                train_frames=2,
                inference_history=1,
            ),
            processor=ProcessorConfig(),
            action_vae_preset="tiny",
            text_vocab_size=tiny_text,
        ),
    )
    small_text, small_codes = 2048, 1024
    small_layout = small_token_layout(small_text, small_codes)
    register_preset(
        "small",
        Preset(
            model=RynnVLAConfig(
                name="small",
                backbone=BackboneConfig(
                    vocab_size=small_layout.vocab_size,
                    hidden_size=512,
                    intermediate_size=1408,
                    num_hidden_layers=8,
                    num_attention_heads=8,
                    num_key_value_heads=8,
                    max_position_embeddings=4096,
                    residual_dropout=0.05,
                ),
                tokens=small_layout,
                image=ImageTokenizerConfig(
                    codebook_size=small_codes,
                    embed_dim=64,
                    latent_channels=128,
                    base_channels=64,
                    channel_multiplier=(1, 1, 2, 2),
                    num_res_blocks=2,
                    resolution=96,
                    short_side=96,
                    crop_multiple=16,
                ),
                state_dim=6,
                action_latent_dim=64,
                train_frames=2,
            ),
            processor=ProcessorConfig(),
            action_vae_preset="tiny",
            text_vocab_size=small_text,
        ),
    )


_register_defaults()
