"""Human clips: manifest parsing with named errors, one-pass decoding, wrist trajectories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rynnvla_training.data.action_chunks import trajectory_as_episode
from rynnvla_training.data.human_videos import HumanClips, read_manifest, wrist_trajectory_episodes


def test_clips_decode_and_expose_the_wrist_trajectory(small_manifest):
    clips = HumanClips((str(small_manifest),))
    entry = json.loads(small_manifest.read_text().splitlines()[0])
    frames = clips.frames(0, "ego")
    assert frames.shape == (entry["num_frames"], 48, 64, 3)
    np.testing.assert_array_equal(clips.frames(0, "ego", np.array([3, 1])), frames[[3, 1]])
    states, actions = clips.arrays(0)
    np.testing.assert_allclose(states[1:], actions[:-1])
    assert clips.length(0) == entry["num_frames"] - 1
    assert clips.task(0) == entry["caption"]


def test_wrist_statistics_treat_every_dim_as_relative(small_manifest):
    out = wrist_trajectory_episodes((str(small_manifest),), "2d", chunk_length=5)
    assert out["absolute_dims"] == () and out["statistics"].action_dim == 2
    assert out["names"] == ("wrist_u", "wrist_v")


def test_malformed_manifest_lines_are_named(tmp_path, small_manifest):
    lines = small_manifest.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["wrist_xyz"] = broken["wrist_xyz"][:-1]
    path = tmp_path / "manifest.jsonl"
    path.write_text(lines[0] + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(ValueError, match=r"manifest\.jsonl:2: .*wrist_xyz has shape"):
        read_manifest(path)


def test_trajectory_needs_two_positions():
    with pytest.raises(ValueError, match=r"\(N >= 2, D\)"):
        trajectory_as_episode(np.zeros((1, 3)))
