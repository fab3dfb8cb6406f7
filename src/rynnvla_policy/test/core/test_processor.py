"""Processor: exact inverse of the action parameterisation, serialisation, load-time errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rynnvla_policy.core import ProcessorError, RynnVLAProcessor


@pytest.fixture
def processor(tiny_checkpoint) -> RynnVLAProcessor:
    return RynnVLAProcessor.from_pretrained(tiny_checkpoint)


def _chunk(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = rng.normal(0, 0.5, 6)
    actions = state + np.cumsum(rng.normal(0, 0.02, (20, 6)), axis=0)
    actions[:, 5] = rng.uniform(0, 1, 20)  # gripper: absolute
    return actions, state


@pytest.mark.parametrize("mode", ["zscore", "percentile"])
def test_normalise_then_unnormalise_is_exact(processor, mode):
    if mode != processor.config.normalization:
        processor = RynnVLAProcessor(
            processor.config.replace(normalization=mode),
            processor.image,
            processor.tokens,
            processor.statistics,
            processor.text_tokenizer,
        )
    actions, state = _chunk()
    normalized = processor.normalize_chunk(actions, state)
    assert normalized.shape == (20, 6)
    np.testing.assert_allclose(processor.to_absolute(normalized, state), actions, atol=1e-12)
    norm_state = processor.normalize_state(state)
    back = processor.normalizer.unnormalize_state(norm_state.astype(np.float64))
    np.testing.assert_allclose(back, state, atol=1e-6)  # float32 state for the model


def test_gripper_stays_absolute(processor):
    normalized = np.zeros((20, 6))
    out = processor.to_absolute(normalized, np.zeros(6))
    stats = processor.statistics
    # z-score zero -> the mean; arm joints accumulate it, the gripper does not.
    np.testing.assert_allclose(out[:, 5], stats.rel_mean_action[5])
    np.testing.assert_allclose(out[-1, 0], 20 * stats.rel_mean_action[0])


def test_save_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    again = RynnVLAProcessor.from_pretrained(tmp_path)
    assert again.to_dict() == processor.to_dict()
    text = "put the pen in the pen holder"
    assert again.encode_instruction(text) == processor.encode_instruction(text)


def _edited(tiny_checkpoint, tmp_path, edit) -> None:
    shutil.copy(tiny_checkpoint / "tokenizer.json", tmp_path / "tokenizer.json")
    data = json.loads((tiny_checkpoint / "processor.json").read_text())
    edit(data)
    (tmp_path / "processor.json").write_text(json.dumps(data))


def test_statistics_of_the_wrong_size_fail_at_load(tiny_checkpoint, tmp_path):
    def drop_dim(data):
        data["statistics"] = {k: v[:5] for k, v in data["statistics"].items()}

    _edited(tiny_checkpoint, tmp_path, drop_dim)
    with pytest.raises(ProcessorError, match="statistics state dim 5 != 6 joints"):
        RynnVLAProcessor.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("statistics"), r"lacks section\(s\) \['statistics'\]"),
        (lambda d: d["statistics"].pop("std_state"), "std_state"),
        (lambda d: d.update(format="other/9"), "format 'other/9'"),
        (lambda d: d["features"].update(camera_names=[]), "camera_names"),
        (lambda d: d["features"].update(absolute_dims=[9]), "absolute_dims"),
    ],
)
def test_bad_processor_files_fail_at_load(tiny_checkpoint, tmp_path, edit, message):
    _edited(tiny_checkpoint, tmp_path, edit)
    with pytest.raises(ProcessorError, match=message):
        RynnVLAProcessor.from_pretrained(tmp_path)


def test_missing_files(tmp_path, tiny_checkpoint):
    with pytest.raises(ProcessorError, match="processor file not found"):
        RynnVLAProcessor.from_pretrained(tmp_path)
    shutil.copy(tiny_checkpoint / "processor.json", tmp_path / "processor.json")
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        RynnVLAProcessor.from_pretrained(tmp_path)


def test_observation_checks(processor):
    images = {"front": np.zeros((96, 128, 3), np.uint8), "wrist": np.zeros((96, 128, 3), np.uint8)}
    processor.check_observation({**images, "top": images["front"]}, np.zeros(6))  # extra: ok
    with pytest.raises(ProcessorError, match="non-finite"):
        processor.check_observation(images, np.array([0, 0, np.nan, 0, 0, 0]))
    with pytest.raises(ProcessorError, match="camera 'front'"):
        processor.preprocess_images({**images, "front": np.zeros((96, 128), np.uint8)})
    # Image formats are checked up front too (the fast path encodes cameras on two threads).
    with pytest.raises(
        ProcessorError, match="camera 'wrist': image must be uint8, got dtype float32"
    ):
        processor.check_observation(
            {**images, "wrist": np.zeros((96, 128, 3), np.float32)}, np.zeros(6)
        )
    with pytest.raises(ProcessorError, match=r"camera 'front'.*got shape \(96, 128, 4\)"):
        processor.check_observation(
            {**images, "front": np.zeros((96, 128, 4), np.uint8)}, np.zeros(6)
        )
    with pytest.raises(ProcessorError, match="unknown camera 'top'"):
        processor.camera_block("top", np.zeros((8, 10), np.int64))
    assert processor.grid_shape(96, 128) == (8, 10)
