"""Stage-3 windows: shapes, normalisation identical to the processor, reproducible jitter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rynnvla_policy.core.actions import ActionStatistics
from rynnvla_policy.core.config import ProcessorConfig
from rynnvla_policy.core.presets import get_preset
from rynnvla_policy.core.processor import RynnVLAProcessor
from rynnvla_policy.core.text_tokenizer import TextTokenizer
from rynnvla_training.data.augment import ColorJitterConfig, JitterDraw
from rynnvla_training.data.frame_store import FrameStore
from rynnvla_training.data.lerobot import LeRobotEpisodes
from rynnvla_training.data.sampling import SampleKey
from rynnvla_training.data.windows import WindowDataset, WindowSpec

PRESET = get_preset("tiny")


def _processor(source: LeRobotEpisodes) -> RynnVLAProcessor:
    stats = source.statistics(20, (5,))
    tasks = [source.task(e) for e in range(len(source))]
    text = TextTokenizer.train(tasks, PRESET.model.tokens, PRESET.text_vocab_size)
    return RynnVLAProcessor(ProcessorConfig(), PRESET.model.image, PRESET.model.tokens, stats, text)


def _dataset(source, processor, tmp_path, jitter=ColorJitterConfig()):
    store = FrameStore(source, processor.image, tmp_path, source.source_id)
    ids = {source.task(e): processor.encode_instruction(source.task(e)) for e in range(len(source))}
    window = WindowSpec(frames=3, stride=2, chunk_length=20, cameras=("front", "wrist"))
    return WindowDataset(
        source, store, window, ids, jitter, processor.normalizer, processor.transform
    )


def test_window_sample_matches_the_processor(small_dataset, tmp_path):
    source = LeRobotEpisodes(small_dataset)
    processor = _processor(source)
    dataset = _dataset(source, processor, tmp_path, ColorJitterConfig(0, 0, 0, 0))
    lengths = [source.length(e) for e in range(len(source))]
    assert len(dataset) == sum(n - 4 for n in lengths)  # windows span (3 - 1) * 2 + 1 frames
    key = SampleKey(index=len(dataset) - 1, position=0, seed=0)  # last window: chunks padded
    sample = dataset[key]
    assert sample["pixels"].shape == (3, 2, 3, 64, 80)
    states, actions = source.arrays(len(source) - 1)
    frames = lengths[-1] - 5 + np.array([0, 2, 4])
    np.testing.assert_allclose(
        sample["states"], processor.normalize_state(states[frames]), atol=1e-6
    )
    last = frames[-1]
    valid = sample["chunk_mask"][-1]
    assert valid.sum() == lengths[-1] - last and not valid[-1]
    padded = np.concatenate([actions[last:], np.repeat(actions[-1:], 20 - valid.sum(), 0)])
    expected = processor.normalize_chunk(padded, states[last])
    np.testing.assert_allclose(sample["chunks"][-1], expected, atol=1e-5)
    assert sample["instruction_ids"] == processor.encode_instruction(source.task(len(source) - 1))


def test_colour_jitter_is_shared_and_reproducible(small_dataset, tmp_path):
    source = LeRobotEpisodes(small_dataset)
    dataset = _dataset(source, _processor(source), tmp_path)
    a = dataset[SampleKey(3, 0, seed=11)]["pixels"]
    b = dataset[SampleKey(3, 99, seed=11)]["pixels"]
    c = dataset[SampleKey(3, 0, seed=12)]["pixels"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1


def test_neutral_jitter_is_identity_and_bad_values_are_named():
    pixels = torch.rand(2, 3, 8, 8) * 2 - 1
    neutral = JitterDraw(brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0)
    torch.testing.assert_close(neutral.apply(pixels), pixels, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"color_jitter\.hue=0\.7"):
        ColorJitterConfig(hue=0.7)


def test_statistics_come_from_the_dataset_block_when_chunking_matches(small_dataset):
    source = LeRobotEpisodes(small_dataset)
    block = source.dataset.processor_statistics()
    from_block = source.statistics(20, (5,))
    np.testing.assert_allclose(from_block.rel_std_action, block["rel_std_action"])
    recomputed = source.statistics(10, (5,))  # other chunking: recomputed from the episodes
    assert isinstance(recomputed, ActionStatistics)
    assert not np.allclose(recomputed.rel_std_action, from_block.rel_std_action)
