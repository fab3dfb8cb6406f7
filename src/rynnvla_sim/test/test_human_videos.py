"""Human-hand ego-centric clips: readable mp4s, a consistent manifest, correct wrist keypoints."""

from __future__ import annotations

import json

import av
import mujoco
import numpy as np
import pytest

from rynnvla_sim import hand_clips
from rynnvla_sim.hand import HandPoser, build_hand_scene
from rynnvla_sim.human_videos import main


def _manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _decode(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("human")
    assert (
        main(["--clips", "3", "--out", str(out), "--fps", "10", "--size", "96x72", "--seed", "4"])
        == 0
    )
    return out


def test_clips_are_readable_mp4s_matching_the_manifest(generated):
    entries = _manifest(generated)
    assert [e["clip"] for e in entries] == ["clip_000000", "clip_000001", "clip_000002"]
    families = {e["task_family"] for e in entries}
    assert len(families) == 3  # families cycle with the clip index
    for entry in entries:
        frames = _decode(generated / entry["video"])
        assert len(frames) == entry["num_frames"] > 30
        assert frames[0].shape == (72, 96, 3)
        assert len(entry["wrist_xyz"]) == len(entry["wrist_uv"]) == entry["num_frames"]
        assert len(entry["wrist_visible"]) == entry["num_frames"]
        assert np.mean(entry["wrist_visible"]) > 0.7  # the hand is in view most of the time
        assert entry["caption"] and entry["embodiment"] == "human_hand"
        assert {"fx", "fy", "cx", "cy"} <= set(entry["camera"])
        # The hand moves: the wrist travels tens of centimetres over the clip.
        xyz = np.array(entry["wrist_xyz"])
        assert np.linalg.norm(xyz.max(axis=0) - xyz.min(axis=0)) > 0.15


def test_wrist_uv_follows_from_wrist_xyz_and_camera_pose(generated):
    entry = _manifest(generated)[1]
    cam = entry["camera"]
    for xyz, uv, pose in zip(
        entry["wrist_xyz"], entry["wrist_uv"], entry["camera_pose"], strict=True
    ):
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, np.array(pose[3:]))
        local = rot.reshape(3, 3).T @ (np.array(xyz) - np.array(pose[:3]))  # camera frame
        u = cam["cx"] + cam["fx"] * local[0] / -local[2]
        v = cam["cy"] - cam["fy"] * local[1] / -local[2]
        assert (u, v) == pytest.approx(tuple(uv), abs=0.02)


def test_existing_manifest_is_not_overwritten(generated, capsys):
    before = (generated / "manifest.jsonl").read_bytes()
    assert main(["--clips", "1", "--out", str(generated)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (generated / "manifest.jsonl").read_bytes() == before


@pytest.mark.parametrize("size", ["128", "127x96", "axb"])
def test_bad_size_is_rejected(tmp_path, size):
    with pytest.raises(SystemExit):
        main(["--clips", "1", "--out", str(tmp_path), "--size", size])


def test_parallel_workers_give_the_same_clips_as_one(tmp_path):
    args = ["--clips", "2", "--fps", "4", "--size", "64x48", "--seed", "9"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    one, two = _manifest(tmp_path / "one"), _manifest(tmp_path / "two")
    assert [e["caption"] for e in one] == [e["caption"] for e in two]
    assert [e["wrist_uv"] for e in one] == [e["wrist_uv"] for e in two]


def test_wrist_uv_lands_on_the_rendered_arm():
    """Project the wrist keypoint and check, by segmentation rendering, that the pixel there
    shows the hand or forearm (or a pixel right next to it)."""
    width, height = 128, 96
    scene = build_hand_scene(width, height)
    poser = HandPoser(scene)
    plan = hand_clips.plan_clip(scene, np.random.default_rng(3), index=0)
    hand_clips.park_unused(poser, plan)
    renderer = mujoco.Renderer(scene.model, height, width)
    renderer.enable_segmentation_rendering()
    arm_geoms = set(scene.skin_geoms.tolist()) | set(scene.sleeve_geoms.tolist())
    hits = checked = 0
    for t in np.linspace(0.3, plan.duration_s - 0.3, 12):
        hand_clips.pose_frame(poser, plan, t)
        u, v, visible = poser.project(poser.wrist_xyz(), width, height)
        if not visible:
            continue
        renderer.update_scene(poser.data, camera="head")
        ids = renderer.render()[..., 0]  # (H, W) geom id per pixel, -1 for background
        r, c = int(v), int(u)
        window = ids[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
        hits += bool(arm_geoms & set(window.ravel().tolist()))
        checked += 1
    renderer.close()
    assert checked >= 8 and hits == checked
