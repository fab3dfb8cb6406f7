"""Skipping the VQ encoder's zero residual branches gives bit-identical features."""

from __future__ import annotations

import pytest
import torch

from rynnvla_policy.core import get_preset
from rynnvla_policy.core.encoder_skip import encode_skipping_zero_branches, has_zero_branches
from rynnvla_policy.core.image_tokenizer import ImageTokenizer

TINY = get_preset("tiny").model.image


def _tokenizer(seed: int = 0) -> ImageTokenizer:
    torch.manual_seed(seed)
    tokenizer = ImageTokenizer(TINY)
    with torch.no_grad():  # random GroupNorm affines: a zero branch must not hide behind them
        for module in tokenizer.modules():
            if isinstance(module, torch.nn.GroupNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return tokenizer


def _blocks(encoder):
    return [b for level in encoder.down for b in level.block] + [
        encoder.mid.block_1,
        encoder.mid.block_2,
    ]


@torch.no_grad()
def _zero(*layers) -> None:
    for layer in layers:
        layer.weight.zero_()
        layer.bias.zero_()


def _pixels() -> torch.Tensor:
    pixels = torch.rand(3, 3, 64, 80, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return pixels.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("which", ["all", "channel_changing", "middle_only"])
@torch.no_grad()
def test_features_are_bit_identical_to_the_transformers_forward(which):
    tokenizer = _tokenizer()
    encoder = tokenizer.vqvae.encoder
    blocks = _blocks(encoder)
    if which == "all":  # the patch-colour encoder: every branch zero, attention too
        _zero(*(b.conv2 for b in blocks), encoder.mid.attn_1.proj_out)
    elif which == "channel_changing":  # its residual is the 1x1 shortcut, not the input
        changing = [b for b in blocks if b.in_channels != b.out_channels]
        assert changing, "the tiny preset should have a channel-changing block"
        _zero(*(b.conv2 for b in changing))
    else:
        _zero(encoder.mid.block_2.conv2)
    assert has_zero_branches(encoder)
    pixels = _pixels()
    expected = encoder(pixels)
    assert torch.equal(encode_skipping_zero_branches(encoder, pixels), expected)
    assert torch.equal(tokenizer.features(pixels), tokenizer.vqvae.quant_conv(expected))


@torch.no_grad()
def test_an_encoder_without_zero_branches_runs_unchanged():
    tokenizer = _tokenizer(seed=3)
    encoder = tokenizer.vqvae.encoder
    assert not has_zero_branches(encoder)
    pixels = _pixels()
    assert torch.equal(encode_skipping_zero_branches(encoder, pixels), encoder(pixels))


@torch.no_grad()
def test_a_branch_with_only_a_bias_left_is_not_skipped():
    tokenizer = _tokenizer()
    encoder = tokenizer.vqvae.encoder
    block = encoder.mid.block_2
    _zero(block.conv2)
    block.conv2.bias[0] = 0.5  # adds a constant: skipping it would change the features
    assert not has_zero_branches(encoder)
    pixels = _pixels()
    assert torch.equal(encode_skipping_zero_branches(encoder, pixels), encoder(pixels))
