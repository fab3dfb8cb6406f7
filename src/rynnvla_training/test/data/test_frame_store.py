"""Frames decoded once per episode, preprocessed exactly like inference, cached atomically."""

from __future__ import annotations

import numpy as np
import torch

from rynnvla_policy.core.image_tokenizer import preprocess_image
from rynnvla_policy.core.presets import get_preset
from rynnvla_training.data.frame_store import FrameStore, preprocess_to_uint8, uint8_to_pixels
from rynnvla_training.data.lerobot import LeRobotEpisodes

IMAGE = get_preset("tiny").model.image


def test_uint8_round_trip_is_the_processors_preprocessing_bit_for_bit():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 64, 3), np.uint8)
    assert torch.equal(
        uint8_to_pixels(preprocess_to_uint8(frame, IMAGE)), preprocess_image(frame, IMAGE)
    )


class CountingSource:
    """A LeRobot dataset that counts full-episode decodes."""

    def __init__(self, root):
        self.inner = LeRobotEpisodes(root)
        self.camera_names = self.inner.camera_names
        self.decodes = 0

    def frames(self, episode, camera, indices=None):
        self.decodes += 1
        return self.inner.frames(episode, camera, indices)


def test_cache_decodes_each_episode_once_and_matches_direct_decoding(small_dataset, tmp_path):
    source = CountingSource(small_dataset)
    cached = FrameStore(source, IMAGE, tmp_path, source.inner.source_id)
    first = cached.get(0, "front", np.array([0, 5, 9]))
    again = cached.get(0, "front", np.array([9, 1]))
    assert source.decodes == 1
    assert first.shape == (3, 64, 80, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(again[0], first[2])
    direct = FrameStore(source, IMAGE, None, "").get(0, "front", np.array([0, 5, 9]))
    np.testing.assert_array_equal(direct, first)
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["episode_000000.npy"]  # no temporary left behind


def test_cache_key_changes_with_preprocessing(small_dataset, tmp_path):
    source = LeRobotEpisodes(small_dataset)
    other = IMAGE.replace(short_side=48)
    a = FrameStore(source, IMAGE, tmp_path, source.source_id)
    b = FrameStore(source, other, tmp_path, source.source_id)
    assert a.root != b.root
    assert b.get(1, "wrist", np.array([0])).shape[1] == 48
