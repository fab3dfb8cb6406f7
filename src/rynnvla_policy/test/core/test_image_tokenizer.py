"""Image preprocessing (resize keeping ratio, crop to multiples) and the VQ encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rynnvla_policy.core import get_preset
from rynnvla_policy.core.image_tokenizer import (
    ImageTokenizer,
    cropped_shape,
    preprocess_image,
    resized_shape,
)

PUBLISHED = get_preset("rynnvla-7b").model.image
TINY = get_preset("tiny").model.image


def test_published_preprocessing_shapes():
    assert resized_shape(480, 640, 384) == (384, 512)
    assert cropped_shape(480, 640, PUBLISHED) == (384, 512)  # -> 24 x 32 codes
    assert resized_shape(720, 1280, 384) == (384, 682)  # torchvision truncates the long side
    assert cropped_shape(720, 1280, PUBLISHED) == (384, 672)
    assert resized_shape(640, 480, 384) == (512, 384)  # portrait


def test_tiny_preprocessing_of_the_sim_camera():
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    pixels = preprocess_image(image, TINY)
    assert pixels.shape == (3, 64, 80)
    assert pixels.dtype == torch.float32
    assert float(pixels.min()) >= -1.0 and float(pixels.max()) <= 1.0


def test_values_scale_to_minus_one_one_and_crop_is_top_left():
    image = np.zeros((64, 90, 3), np.uint8)
    image[:, :80] = 255  # columns beyond 80 are cropped away
    pixels = preprocess_image(image, TINY)
    assert pixels.shape == (3, 64, 80)
    assert torch.all(pixels == 1.0)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((64, 64, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
    ],
)
def test_bad_images_are_rejected(image, message):
    with pytest.raises(ValueError, match=message):
        preprocess_image(image, TINY)


def test_encode_shapes_and_checks():
    torch.manual_seed(0)
    tokenizer = ImageTokenizer(TINY)
    pixels = torch.rand(2, 3, 64, 80) * 2 - 1
    codes = tokenizer.encode(pixels)
    assert codes.shape == (2, 8, 10)
    assert int(codes.min()) >= 0 and int(codes.max()) < TINY.codebook_size
    with pytest.raises(ValueError, match="multiple of crop_multiple=16"):
        tokenizer.encode(torch.zeros(1, 3, 60, 80))
    assert not tokenizer.train().training  # frozen


def test_encode_matches_transformers_vqvae_quantizer():
    torch.manual_seed(0)
    tokenizer = ImageTokenizer(TINY)
    pixels = torch.rand(1, 3, 64, 80) * 2 - 1
    reference = tokenizer.vqvae.encode(pixels).image_tokens.view(1, 8, 10)
    assert torch.equal(tokenizer.encode(pixels), reference)


def test_fit_codebook_lowers_quantisation_error_and_spreads_codes():
    torch.manual_seed(0)
    tokenizer = ImageTokenizer(TINY)
    gen = torch.Generator().manual_seed(1)
    pixels = torch.rand(8, 3, 64, 80, generator=gen) * 2 - 1
    feats = tokenizer.features(pixels).permute(0, 2, 3, 1).reshape(-1, TINY.embed_dim)

    def error() -> float:
        book = tokenizer.vqvae.quantize.embedding.weight
        return float(torch.cdist(feats, book).min(dim=1).values.pow(2).mean() / TINY.embed_dim)

    before = error()
    after = tokenizer.fit_codebook(pixels, iterations=5)
    assert after < before
    assert len(torch.unique(tokenizer.encode(pixels))) > 32
