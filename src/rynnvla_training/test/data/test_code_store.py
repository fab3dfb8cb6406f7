"""VQ codes encoded once per frame with the frozen tokenizer: identical to encoding each sample,
cached under the tokenizer's fingerprint, refused with colour jitter."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rynnvla_policy.core.image_tokenizer import ImageTokenizer
from rynnvla_policy.core.presets import get_preset
from rynnvla_training.data.augment import ColorJitterConfig
from rynnvla_training.data.code_store import CodeStore, tokenizer_fingerprint
from rynnvla_training.data.frame_store import FrameStore, uint8_to_pixels
from rynnvla_training.data.lerobot import LeRobotEpisodes
from rynnvla_training.data.sampling import SampleKey
from rynnvla_training.data.windows import WindowDataset, WindowSpec

IMAGE = get_preset("tiny").model.image
NO_JITTER = ColorJitterConfig(0.0, 0.0, 0.0, 0.0)


def _tokenizer(seed: int = 0) -> ImageTokenizer:
    torch.manual_seed(seed)
    tokenizer = ImageTokenizer(IMAGE)
    for parameter in tokenizer.parameters():  # not the default init: codes must spread out
        parameter.data.normal_(0, 0.5)
    return tokenizer


@pytest.fixture
def stores(small_dataset, tmp_path):
    source = LeRobotEpisodes(small_dataset)
    frames = FrameStore(source, IMAGE, tmp_path, source.source_id)
    return frames, CodeStore(frames, _tokenizer())


def test_cached_codes_equal_encoding_the_frames(stores):
    frames, codes = stores
    codes.fill(("front", "wrist"))
    ids = np.array([0, 7, 3])
    for camera in ("front", "wrist"):
        expected = codes._tokenizer.encode(uint8_to_pixels(frames.get(1, camera, ids)))
        got = codes.get(1, camera, ids)
        assert got.dtype == np.int16 and got.shape == (3, 8, 10)
        np.testing.assert_array_equal(got, expected.numpy())
    assert len(np.unique(got)) > 1  # a real spread of codes, not one constant
    assert not list(codes.root.rglob("*.tmp"))


def test_codes_are_cached_per_tokenizer(stores):
    frames, codes = stores
    codes.fill(("front",))
    written = sorted(codes.root.rglob("*.npy"))
    assert len(written) == len(frames.source)
    mtimes = [p.stat().st_mtime_ns for p in written]
    again = CodeStore(frames, _tokenizer())
    again.fill(("front",))  # the same weights: read back, nothing re-encoded
    assert again.root == codes.root
    assert [p.stat().st_mtime_ns for p in written] == mtimes
    other = _tokenizer()
    with torch.no_grad():
        other.vqvae.quantize.embedding.weight[0, 0] += 1e-3  # one codebook value differs
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(codes._tokenizer)
    assert CodeStore(frames, other).root != codes.root


def test_a_worker_copy_reads_files_and_never_encodes(stores):
    _, codes = stores
    codes.fill(("front",))
    copy = pickle.loads(pickle.dumps(codes))
    assert copy._tokenizer is None
    np.testing.assert_array_equal(
        copy.get(0, "front", np.array([2])), codes.get(0, "front", np.array([2]))
    )
    with pytest.raises(FileNotFoundError, match="fill"):
        copy.get(0, "wrist", np.array([0]))


def test_a_store_needs_a_cache_directory(small_dataset):
    source = LeRobotEpisodes(small_dataset)
    with pytest.raises(ValueError, match="cache directory"):
        CodeStore(FrameStore(source, IMAGE, None, ""), _tokenizer())


def _windows(frames, codes, jitter):
    source = frames.source
    ids = {source.task(e): [0, 5] for e in range(len(source))}
    spec = WindowSpec(2, 1, 4, ("front", "wrist"))
    return WindowDataset(source, frames, spec, ids, jitter, codes=codes)


def test_window_samples_carry_codes_instead_of_pixels(stores):
    frames, codes = stores
    codes.fill(("front", "wrist"))
    sample = _windows(frames, codes, NO_JITTER)[SampleKey(3, 0, 1)]
    pixels = _windows(frames, None, NO_JITTER)[SampleKey(3, 0, 1)]["pixels"]  # (K, C, 3, h, w)
    assert "pixels" not in sample and sample["codes"].dtype == torch.int64
    expected = codes._tokenizer.encode(pixels.flatten(0, 1)).view(2, 2, 8, 10)
    assert torch.equal(sample["codes"], expected)


def test_codes_with_colour_jitter_are_refused(stores):
    frames, codes = stores
    with pytest.raises(ValueError, match="colour jitter"):
        _windows(frames, codes, ColorJitterConfig())
