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


def _small_preset(
    name: str,
    *,
    text_vocab: int,
    codebook: int,
    hidden: int,
    intermediate: int,
    layers: int,
    heads: int,
    max_positions: int,
    embed_dim: int,
    latent_channels: int,
    base_channels: int,
    res_blocks: int,
    image_side: int,
) -> Preset:
    """A preset of the small family; the presets of the family differ only in these sizes.

    Shared: the Chameleon-ordered layout of `small_token_layout`, full multi-head attention
    (as many key/value heads as heads), a x8 VQ (4 levels, square `image_side` input), learned
    image-token positions, a 6-D state, 2 training frames and the ``tiny`` ActionVAE (64-D
    latent).
    """
    layout = small_token_layout(text_vocab, codebook)
    return Preset(
        model=RynnVLAConfig(
            name=name,
            backbone=BackboneConfig(
                vocab_size=layout.vocab_size,
                hidden_size=hidden,
                intermediate_size=intermediate,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                num_key_value_heads=heads,
                max_position_embeddings=max_positions,
                residual_dropout=0.05,
            ),
            tokens=layout,
            image=ImageTokenizerConfig(
                codebook_size=codebook,
                embed_dim=embed_dim,
                latent_channels=latent_channels,
                base_channels=base_channels,
                channel_multiplier=(1, 1, 2, 2),
                num_res_blocks=res_blocks,
                resolution=image_side,
                short_side=image_side,
                crop_multiple=16,
            ),
            state_dim=6,
            action_latent_dim=64,
            train_frames=2,
            image_position_embeddings=True,  # too small to learn positions from RoPE alone
        ),
        processor=ProcessorConfig(),
        action_vae_preset="tiny",
        text_vocab_size=text_vocab,
    )


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
    register_preset(
        "tiny",
        _small_preset(
            "tiny",
            text_vocab=512,
            codebook=256,
            hidden=192,
            intermediate=512,
            layers=4,
            heads=3,
            max_positions=1024,
            embed_dim=32,
            latent_channels=64,
            base_channels=32,
            res_blocks=1,
            image_side=64,
        ),
    )
    register_preset(
        "small",
        _small_preset(
            "small",
            text_vocab=2048,
            codebook=1024,
            hidden=512,
            intermediate=1408,
            layers=8,
            heads=8,
            max_positions=4096,
            embed_dim=64,
            latent_channels=128,
            base_channels=64,
            res_blocks=2,
            image_side=96,
        ),
    )


_register_defaults()
