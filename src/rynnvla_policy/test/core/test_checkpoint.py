"""Our checkpoint directory: save -> load is bit-identical; mismatches are named errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rynnvla_policy.core import Checkpoint, CheckpointError, PolicyRunner


def _copy(tiny_checkpoint, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, target)
    return target


def test_save_then_load_gives_bit_identical_actions(tiny_checkpoint, tmp_path, make_observation):
    original = Checkpoint.from_pretrained(tiny_checkpoint)
    resaved = original.save_pretrained(tmp_path / "again")
    first = PolicyRunner(original)
    second = PolicyRunner.from_pretrained(resaved)
    for seed in range(2):
        obs = make_observation(seed=seed)
        a, b = first.infer(obs), second.infer(obs)
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.latent, b.latent)
    names = {p.name for p in resaved.iterdir()}
    assert {"config.json", "model.safetensors", "processor.json", "tokenizer.json"} <= names
    assert {"action_vae", "image_tokenizer"} <= names


def test_corrupt_weights_name_the_file(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    (ckpt / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: unreadable"):
        Checkpoint.from_pretrained(ckpt)


def test_shape_mismatch_names_key_and_shapes(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    config = json.loads((ckpt / "config.json").read_text())
    config["backbone"]["intermediate_size"] = 256
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"mlp\.gate_proj\.weight: file \(512, 192\) vs model \(256, 192\)"
    ):
        Checkpoint.from_pretrained(ckpt)


def test_parts_that_disagree_fail_at_load(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    processor = json.loads((ckpt / "processor.json").read_text())
    processor["features"]["chunk_length"] = 10
    (ckpt / "processor.json").write_text(json.dumps(processor))
    with pytest.raises(CheckpointError, match="chunk_length: ActionVAE 20 vs processor 10"):
        Checkpoint.from_pretrained(ckpt)


def test_missing_parts(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="directory not found"):
        Checkpoint.from_pretrained(tmp_path / "nothing")
    ckpt = _copy(tiny_checkpoint, tmp_path)
    shutil.rmtree(ckpt / "action_vae")
    with pytest.raises(CheckpointError, match="action_vae"):
        Checkpoint.from_pretrained(ckpt)
    ckpt2 = _copy(tiny_checkpoint, tmp_path / "b")
    config = json.loads((ckpt2 / "config.json").read_text())
    config["format"] = "something-else"
    (ckpt2 / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format 'something-else'"):
        Checkpoint.from_pretrained(ckpt2)
