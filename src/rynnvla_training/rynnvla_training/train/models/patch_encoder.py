"""A training-free, local initialisation of the ChameleonVQVAE encoder for small presets.

Small presets have no pretrained VQGAN. Fitting a k-means codebook on the features of a *randomly*
initialised encoder does not work: every GroupNorm in the encoder normalises over the whole image,
so in a random network removing a 5x5 px object changes the features of most cells by 30-100 %
and flips ~60 % of the codes (measured on the simulated table scene). Such codes do not say where
anything is, and a policy trained on them cannot localise objects.

This module sets the same architecture's weights so that each cell's feature is the mean colour
of its 2 x 2 sub-blocks (a space-to-depth colour encoder; 12 values for RGB):

- ``conv_in`` copies R, G, B into channels 0-2; every residual block and attention block gets a
  zero output projection, so it is the identity (a channel-changing block's 1 x 1 shortcut is a
  channel copy);
- each stride-2 downsample averages 2 x 2 pixels, except the last, which keeps the four
  sub-block means f as separate features, each as the channel pair ``(offset + f, -offset - f)``
  inside one GroupNorm group (the tiny presets have groups of 2 channels);
- ``norm_out`` sees groups of mean 0 and variance mean((offset + f)^2), so it divides by
  ~(offset + m), m the image's mean of f: swish(x) - swish(-x) = x lets ``conv_out`` recover
  (offset + f) / (offset + m) exactly, and ``quant_conv`` maps that back to pixel units,
  ~ f - m. What remains global is that subtraction of the mean colour: removing a 5 x 5 px
  object shifts every feature by ~0.005 (under one grey level).

The k-means codebook fitted on top then quantises "which colours where inside the cell": codes
change where the image changes, plus 0-2 other cells per frame when the arm moves (the mean-colour
shift crossing a codebook boundary; measured on the sim scene), and a 4 px shift of an object
changes its code.
"""

from __future__ import annotations

import torch
from torch import nn

from rynnvla_policy.core.image_tokenizer import ImageTokenizer

COLOURS = 3
SUB_BLOCKS = 4  # the final cell's 2 x 2 sub-blocks
FEATURES = COLOURS * SUB_BLOCKS
DEFAULT_OFFSET = 30.0  # >> |pixel| <= 1: GroupNorm's scale ~ offset + mean colour (linear)


@torch.no_grad()
def init_patch_colour_encoder(tokenizer: ImageTokenizer, offset: float = DEFAULT_OFFSET) -> None:
    """Overwrite `tokenizer`'s encoder and quant_conv weights in place (see the module doc)."""
    vqvae = tokenizer.vqvae
    encoder = vqvae.encoder
    _check_capacity(tokenizer)
    for module in (*encoder.modules(), vqvae.quant_conv):
        if isinstance(module, nn.Conv2d | nn.GroupNorm):
            _zero(module)
    for norm in _group_norms(encoder):
        norm.weight.fill_(1.0)  # GroupNorm affine = identity (their branches are zeroed anyway)
    for colour in range(COLOURS):  # conv_in: channel c <- colour c (centre tap)
        encoder.conv_in.weight[colour, colour, 1, 1] = 1.0
    for block in _resnet_blocks(encoder):
        if hasattr(block, "nin_shortcut"):  # channel-changing block: residual = copy of 0-2
            for colour in range(COLOURS):
                block.nin_shortcut.weight[colour, colour, 0, 0] = 1.0
    downsamples = [level.downsample for level in encoder.down if hasattr(level, "downsample")]
    for downsample in downsamples[:-1]:
        for colour in range(COLOURS):  # 2 x 2 average (the conv sees the pixel at offset 0/1)
            downsample.conv.weight[colour, colour, :2, :2] = 0.25
    last = downsamples[-1].conv
    for sub in range(SUB_BLOCKS):
        row, col = divmod(sub, 2)
        for colour in range(COLOURS):
            feature = sub * COLOURS + colour
            last.weight[2 * feature, colour, row, col] = 1.0  # offset + f
            last.weight[2 * feature + 1, colour, row, col] = -1.0  # -(offset + f)
            last.bias[2 * feature] = offset
            last.bias[2 * feature + 1] = -offset
    # conv_out: feature k = swish(ch 2k) - swish(ch 2k + 1) = (offset + f) / scale (centre tap);
    # quant_conv: offset * that - offset ~ f - m, in pixel units.
    for feature in range(FEATURES):
        encoder.conv_out.weight[feature, 2 * feature, 1, 1] = 1.0
        encoder.conv_out.weight[feature, 2 * feature + 1, 1, 1] = -1.0
        vqvae.quant_conv.weight[feature, feature, 0, 0] = offset
        vqvae.quant_conv.bias[feature] = -offset


def _check_capacity(tokenizer: ImageTokenizer) -> None:
    config = tokenizer.config
    levels = len(config.channel_multiplier)
    last_channels = config.base_channels * config.channel_multiplier[-1]
    problems = []
    if levels < 2:
        problems.append(f"channel_multiplier {config.channel_multiplier} has no downsample")
    if config.base_channels < COLOURS:
        problems.append(f"base_channels {config.base_channels} < {COLOURS}")
    if last_channels < 2 * FEATURES or last_channels % 32 or last_channels // 32 < 2:
        problems.append(
            f"the last level has {last_channels} channels; needs >= {2 * FEATURES} in GroupNorm "
            "groups of >= 2 (32 groups)"
        )
    if config.latent_channels < FEATURES or config.embed_dim < FEATURES:
        problems.append(
            f"latent_channels {config.latent_channels} / embed_dim {config.embed_dim} < {FEATURES}"
        )
    if problems:
        raise ValueError(
            "the patch-colour encoder does not fit this tokenizer: " + "; ".join(problems)
        )


def _zero(module: nn.Module) -> None:
    for parameter in module.parameters(recurse=False):
        parameter.zero_()


def _group_norms(encoder: nn.Module) -> list[nn.GroupNorm]:
    return [m for m in encoder.modules() if isinstance(m, nn.GroupNorm)]


def _resnet_blocks(encoder: nn.Module) -> list[nn.Module]:
    blocks = [block for level in encoder.down for block in level.block]
    return [*blocks, encoder.mid.block_1, encoder.mid.block_2]


@torch.no_grad()
def fit_distinct_codebook(
    tokenizer: ImageTokenizer,
    pixels: torch.Tensor,  # (B, 3, h, w) preprocessed
    grid_step: float = 0.01,
    iterations: int = 10,
) -> float:
    """k-means codebook over the *distinct* cell features of `pixels`; returns the mse.

    Plain k-means follows density: with most cells showing bare table it spends dozens of codes
    on near-identical table features, whose boundaries any global brightness change crosses (a
    small object moving flipped 60 of 80 codes). Rounding features to `grid_step` and keeping
    one of each first gives every distinct appearance one vote, so codes spread over what can
    be told apart. Deterministic: farthest-point initialisation from the most common feature.
    """
    features = tokenizer.features(pixels)  # (B, E, gh, gw)
    flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).float()  # (N, E)
    keys, inverse, counts = torch.unique(
        torch.round(flat / grid_step), dim=0, return_inverse=True, return_counts=True
    )
    distinct = torch.zeros(len(keys), flat.shape[1]).index_add_(0, inverse, flat)
    distinct /= counts.unsqueeze(1).float()  # (U, E): mean feature of each rounded value
    num_codes = tokenizer.config.codebook_size
    centroids = _farthest_points(distinct, num_codes, start=int(counts.argmax()))  # (K, E)
    for _ in range(iterations):
        assign = torch.cdist(distinct, centroids).argmin(dim=1)  # (U,)
        sums = torch.zeros_like(centroids).index_add_(0, assign, distinct)
        members = torch.bincount(assign, minlength=len(centroids)).float().unsqueeze(1)
        centroids = torch.where(members > 0, sums / members.clamp(min=1), centroids)
    codebook = tokenizer.vqvae.quantize.embedding.weight
    codebook.copy_(centroids[torch.arange(num_codes) % len(centroids)])  # fewer values: repeat
    nearest = torch.cdist(flat, centroids).argmin(dim=1)
    return float((flat - centroids[nearest]).pow(2).mean())


def _farthest_points(points: torch.Tensor, count: int, start: int) -> torch.Tensor:
    """Up to `count` rows of `points` (U, E), each the farthest from those chosen before."""
    chosen = [start]
    distance = (points - points[start]).norm(dim=1)  # (U,) to the nearest chosen point
    while len(chosen) < min(count, len(points)):
        index = int(distance.argmax())
        chosen.append(index)
        distance = torch.minimum(distance, (points - points[index]).norm(dim=1))
    return points[chosen].clone()
