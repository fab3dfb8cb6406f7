"""`model.image_embedding_init: codebook`: image-code embeddings start from the codebook."""

from __future__ import annotations

import pytest
import torch

from rynnvla_policy.core.image_tokenizer import ImageTokenizer
from rynnvla_policy.core.modeling import RynnVLAModel
from rynnvla_policy.core.presets import get_preset
from rynnvla_training.train.models.patch_encoder import (
    fit_distinct_codebook,
    init_patch_colour_encoder,
)
from rynnvla_training.train.stages.vla_common import (
    VLAModelConfig,
    init_image_embeddings_from_codebook,
)

PRESET = get_preset("tiny").model


def _scenes(count: int) -> torch.Tensor:
    """(count, 3, 64, 80) pixels in [-1, 1]: a flat table with one coloured square each."""
    gen = torch.Generator().manual_seed(0)
    images = torch.tensor([0.8, 0.5, 0.1]).view(1, 3, 1, 1) + torch.zeros(count, 3, 64, 80)
    for image in images:
        top, left = (int(v) for v in torch.randint(0, 56, (2,), generator=gen))
        image[:, top : top + 6, left : left + 6] = torch.rand(3, 1, 1, generator=gen) * 2 - 1
    return images


def _fitted_tokenizer() -> ImageTokenizer:
    tokenizer = ImageTokenizer(PRESET.image)
    init_patch_colour_encoder(tokenizer)
    fit_distinct_codebook(tokenizer, _scenes(64))
    return tokenizer


def test_embedding_distances_follow_codebook_distances_at_the_init_scale():
    torch.manual_seed(0)
    model = RynnVLAModel(PRESET)
    before = model.model.embed_tokens.weight.detach().clone()  # (V, H)
    tokenizer = _fitted_tokenizer()
    init_image_embeddings_from_codebook(model, tokenizer, seed=3)
    tokens = PRESET.tokens
    rows = slice(tokens.image_code_offset, tokens.image_code_offset + tokens.codebook_size)
    after = model.model.embed_tokens.weight.detach()
    outside = torch.ones(after.shape[0], dtype=torch.bool)
    outside[rows] = False
    torch.testing.assert_close(after[outside], before[outside])  # text and special rows kept
    embedded = after[rows]  # (K, H)
    std = PRESET.backbone.initializer_range
    assert 0.5 * std < float(embedded.std()) < 1.5 * std
    book = tokenizer.vqvae.quantize.embedding.weight.detach()
    standard = (book - book.mean(0)) / (book.std(0) + 1e-6)
    code_distance = torch.pdist(standard)  # (K (K - 1) / 2,)
    embedding_distance = torch.pdist(embedded.float())
    correlation = torch.corrcoef(torch.stack([code_distance, embedding_distance]))[0, 1]
    assert correlation > 0.9  # a random projection keeps the geometry
    again = RynnVLAModel(PRESET)
    init_image_embeddings_from_codebook(again, tokenizer, seed=3)
    torch.testing.assert_close(again.model.embed_tokens.weight[rows], embedded)  # seeded


def test_a_codebook_of_another_size_is_refused():
    model = RynnVLAModel(PRESET)
    tokenizer = _fitted_tokenizer()
    tokenizer.vqvae.quantize.embedding.weight.data = torch.randn(100, 32)
    with pytest.raises(ValueError, match="codebook has 100 codes, the model's vocabulary 256"):
        init_image_embeddings_from_codebook(model, tokenizer, seed=0)


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match=r"model\.image_embedding_init='pca': must be 'random' or"):
        VLAModelConfig(image_embedding_init="pca")
