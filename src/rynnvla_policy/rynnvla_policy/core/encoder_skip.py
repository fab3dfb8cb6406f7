"""The VQ encoder's forward pass without the residual branches that are exactly zero.

The small presets' patch-colour encoder (rynnvla_training's ``patch_encoder``) zeroes the output
convolution of every residual and attention block, so each of them returns its input unchanged,
yet transformers' ``ChameleonVQVAEEncoder`` still computes their two 3x3 convolutions at every
resolution: about 90 % of the encoder's time on the tiny preset. A branch whose last layer has
all-zero weights and bias adds exactly 0.0 to the residual, so skipping it gives bit-identical
features. The check runs on every call (a few small reductions), because the tokenizer's weights
may be set after construction; an encoder without such branches (the published VQGAN) runs
transformers' own forward, untouched.
"""

from __future__ import annotations

import torch
from torch import nn


def zero_branch(layer: nn.Module) -> bool:
    """True if `layer` (a Conv2d) always outputs exactly 0."""
    bias = getattr(layer, "bias", None)
    return not layer.weight.any() and (bias is None or not bias.any())


def _resnet(block: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if not zero_branch(block.conv2):
        return block(hidden)
    if block.in_channels == block.out_channels:
        return hidden
    shortcut = block.conv_shortcut if block.use_conv_shortcut else block.nin_shortcut
    return shortcut(hidden)


def _attention(block: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if isinstance(block, nn.Identity) or zero_branch(block.proj_out):
        return hidden
    return block(hidden)


def has_zero_branches(encoder: nn.Module) -> bool:
    blocks = [b for level in encoder.down for b in level.block]
    blocks += [encoder.mid.block_1, encoder.mid.block_2]
    return any(zero_branch(b.conv2) for b in blocks)


def encode_skipping_zero_branches(encoder: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """`encoder(pixels)` (a ChameleonVQVAEEncoder), computed without its zero branches."""
    if not has_zero_branches(encoder):
        return encoder(pixels)
    hidden = encoder.conv_in(pixels)
    for index, level in enumerate(encoder.down):
        for block_index, block in enumerate(level.block):
            hidden = _resnet(block, hidden)
            if len(level.attn) > 0:
                hidden = _attention(level.attn[block_index], hidden)
        if index != encoder.num_resolutions - 1:
            hidden = level.downsample(hidden)
    hidden = _resnet(encoder.mid.block_1, hidden)
    hidden = _attention(encoder.mid.attn_1, hidden)
    hidden = _resnet(encoder.mid.block_2, hidden)
    hidden = encoder.norm_out(hidden)
    hidden = hidden * torch.sigmoid(hidden)
    return encoder.conv_out(hidden)
