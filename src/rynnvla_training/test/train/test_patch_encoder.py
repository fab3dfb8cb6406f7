"""The patch-colour encoder under the small presets' k-means codebook: local, exact, stable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rynnvla_policy.core.image_tokenizer import ImageTokenizer
from rynnvla_policy.core.presets import get_preset
from rynnvla_sim.env import ArmSimEnv
from rynnvla_training.train.models.patch_encoder import (
    DEFAULT_OFFSET,
    fit_distinct_codebook,
    init_patch_colour_encoder,
)

IMAGE = get_preset("tiny").model.image  # 8x downsampling, 64 px


def table_scene(seed: int, objects: int = 4, sizes: tuple[int, int] = (2, 5)) -> torch.Tensor:
    """(3, 64, 80) pixels in [-1, 1]: a table with a few small coloured boxes on it."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.tensor([0.8, 0.5, 0.1]).view(3, 1, 1) + torch.zeros(3, 64, 80)
    for _ in range(objects):
        top, left = (int(v) for v in torch.randint(0, 56, (2,), generator=gen))
        size = int(torch.randint(*sizes, (1,), generator=gen))
        image[:, top : top + size, left : left + size] = torch.rand(3, 1, 1, generator=gen) * 2 - 1
    return image


def sim_frames_and_arm_moves(frames: int = 30, moves: int = 8):
    """Rendered front/wrist frames of the simulated table (codebook fitting), and pairs of front
    frames before / after a small arm motion."""
    env = ArmSimEnv()
    rng = np.random.default_rng(0)
    fitting, pairs = [], []
    try:
        for seed in range(frames // 2):
            env.reset("block_to_plate", 1000 + seed)
            env.set_joint_targets(env.joint_positions() + rng.uniform(-0.5, 0.5, 6))
            env.step(0.5)
            fitting += [env.render("front"), env.render("wrist")]
        for seed in range(moves):
            env.reset("block_to_plate", seed)
            before = env.render("front")
            env.set_joint_targets(env.joint_positions() + rng.uniform(-0.3, 0.3, 6))
            env.step(0.3)
            pairs.append((before, env.render("front")))
    finally:
        env.close()
    return fitting, pairs


def spurious_code_changes(tokenizer: ImageTokenizer, pairs) -> tuple[int, int]:
    """(codes changed in cells whose pixels changed, codes changed in cells whose did not)."""
    real = spurious = 0
    for before, after in pairs:
        a, b = tokenizer.preprocess(before), tokenizer.preprocess(after)  # (3, h, w)
        pixels_changed = F.max_pool2d((a != b).any(0).float()[None, None], 8)[0, 0] > 0
        codes_changed = tokenizer.encode(a[None])[0] != tokenizer.encode(b[None])[0]
        real += int((codes_changed & pixels_changed).sum())
        spurious += int((codes_changed & ~pixels_changed).sum())
    return real, spurious


@pytest.fixture(scope="module")
def sim_scene():
    return sim_frames_and_arm_moves()


def patch_tokenizer() -> ImageTokenizer:
    tokenizer = ImageTokenizer(IMAGE)
    init_patch_colour_encoder(tokenizer)
    return tokenizer


def test_features_are_the_sub_block_colours_with_a_near_constant_scale():
    pixels = table_scene(0).unsqueeze(0)  # (1, 3, 64, 80)
    features = patch_tokenizer().features(pixels)[0, :12]  # (12, 8, 10)
    sub_blocks = torch.nn.functional.avg_pool2d(pixels, 4)[0]  # (3, 16, 20)
    expected = []
    for row, col in ((0, 0), (0, 1), (1, 0), (1, 1)):
        expected.append(sub_blocks[:, row::2, col::2])  # (3, 8, 10)
    expected = torch.cat(expected)  # (12, 8, 10), feature index = sub * 3 + colour
    # GroupNorm's scale: groups (offset + f, -offset - f) have mean 0, variance mean((o + f)^2)
    shifted = expected + DEFAULT_OFFSET
    scale = shifted.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
    torch.testing.assert_close(
        features, DEFAULT_OFFSET * shifted / scale - DEFAULT_OFFSET, atol=1e-4, rtol=1e-4
    )
    # ... which is the colour minus the image's mean colour, to first order
    centred = expected - expected.mean(dim=(1, 2), keepdim=True)
    assert (features - centred).abs().max() < 0.05


def test_on_the_sim_table_codes_change_only_where_the_arm_moved(sim_scene):
    fitting, pairs = sim_scene
    tokenizer = patch_tokenizer()
    fit_distinct_codebook(tokenizer, torch.stack([tokenizer.preprocess(f) for f in fitting]))
    real, spurious = spurious_code_changes(tokenizer, pairs)
    assert real >= 2 * len(pairs)  # the arm moved in every pair
    # measured 0-2 per frame (the GroupNorm subtracts the frame's mean colour, see module doc)
    assert spurious <= len(pairs), f"{spurious} codes changed where no pixel did"


def test_the_random_encoder_it_replaces_is_not_local(sim_scene):
    """Why this exists: the same experiment with the random encoder flips codes everywhere."""
    fitting, pairs = sim_scene
    torch.manual_seed(0)
    tokenizer = ImageTokenizer(IMAGE)
    tokenizer.fit_codebook(torch.stack([tokenizer.preprocess(f) for f in fitting]), seed=0)
    _, spurious = spurious_code_changes(tokenizer, pairs)
    assert spurious > 10 * len(pairs)


def test_distinct_codebook_is_deterministic_and_uses_many_codes():
    frames = torch.stack([table_scene(seed, objects=8) for seed in range(32)])
    first, second = patch_tokenizer(), patch_tokenizer()
    error = fit_distinct_codebook(first, frames)
    fit_distinct_codebook(second, frames)
    codebook = first.vqvae.quantize.embedding.weight
    assert torch.equal(codebook, second.vqvae.quantize.embedding.weight)
    assert error < 1e-3
    assert len(torch.unique(first.encode(frames))) > 100


def test_a_tokenizer_too_small_for_the_features_is_refused_by_name():
    narrow = dataclasses.replace(IMAGE, channel_multiplier=(1, 1, 1, 1))  # 32 groups of 1
    with pytest.raises(ValueError, match="last level has 32 channels"):
        init_patch_colour_encoder(ImageTokenizer(narrow))
