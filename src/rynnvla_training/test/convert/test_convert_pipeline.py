"""End to end: generated bags (both storages, raw and JPEG, jitter, drops) -> dataset, checked
against ground truth; options (next state, instruction split, gaps, val split); CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from convert_truth import check_episode

from rynnvla_training.convert import ConversionError, ConvertConfig, run_conversion
from rynnvla_training.convert.cli import main as convert_main
from rynnvla_training.convert.synthetic import (
    RecordingSpec,
    action_truth,
    joint_truth,
    write_recording,
)
from rynnvla_training.dataset import LeRobotV3Dataset
from rynnvla_training.dataset.validate import validate

FPS = 30
PERIOD_S = 1 / FPS

GROUND_TRUTH_BAGS = {
    "sqlite_raw": RecordingSpec(storage="sqlite3", drop_rate=0.05, seed=1, encoding="bgr8"),
    "mcap_jpeg_zstd": RecordingSpec(
        storage="mcap", image_format="jpeg", compressed=True, drop_rate=0.05, seed=2
    ),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Two jittery, lossy recordings converted in one run (shared by the tests below)."""
    root = tmp_path_factory.mktemp("truth")
    recordings = {
        name: write_recording(root / "bags" / name, spec)
        for name, spec in GROUND_TRUTH_BAGS.items()
    }
    result = run_conversion([root / "bags"], root / "dataset", ConvertConfig(), progress=False)
    return recordings, result


def test_frames_states_actions_equal_exact_as_of_ground_truth(converted):
    recordings, result = converted
    dataset = LeRobotV3Dataset(result.output)
    sources = [e["source"].split("/")[-1] for e in result.report["episodes"]]
    assert sources == sorted(recordings)  # one bag = one episode, in path order
    for index, name in enumerate(sources):
        recording, episode = recordings[name], result.report["episodes"][index]
        offsets = check_episode(dataset, index, recording, episode)
        # as-of samples lag the frame by less than one period of their stream, plus drops
        for camera in ("front", "wrist"):
            assert np.percentile(offsets[camera], 90) < PERIOD_S + 0.005, name
            assert offsets[camera].max() < 3 * PERIOD_S, name
        assert offsets["action"].max() < PERIOD_S  # commanded action: within one frame period
        assert episode["match_rate"] > 0.95
        assert episode["length"] >= 110  # 4 s at 30 fps, trimmed to where all streams exist


def test_no_future_leakage_against_the_continuous_truth(converted):
    _, result = converted
    dataset = LeRobotV3Dataset(result.output, load_images=False)
    for index, episode in enumerate(result.report["episodes"]):
        data = dataset.episode(index)
        t = (episode["start_ns"] + np.arange(data.length) * 1e9 / FPS - 1.7e18) / 1e9
        # the state is the arm at or before t: never closer to a later pose than the truth
        # allows; with a smooth 200 Hz stream the error is within one state period of motion
        speed = 0.8 * 2 * np.pi * 0.7  # fastest joint, rad/s
        assert np.abs(data.states - joint_truth(t)).max() < speed * 0.02
        assert np.abs(data.actions - action_truth(t)).max() < speed * PERIOD_S


def test_dataset_is_valid_and_reports_sync(converted):
    _, result = converted
    assert validate(result.output, decode_videos=True) == []
    report = json.loads((result.output / "meta/rynnvla_conversion_report.json").read_text())
    sync = report["episodes"][0]["sync"]
    assert set(sync) == {"camera.front", "camera.wrist", "state", "action", "instruction"}
    assert sync["camera.front"]["offset_ms"]["max"] < 3 * 1000 * PERIOD_S
    assert 0.9 < sync["state"]["match_rate"] <= 1.0
    info = json.loads((result.output / "meta/info.json").read_text())
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == "h264"


def test_rerun_with_same_inputs_is_up_to_date(converted, tmp_path):
    recordings, result = converted
    bags = sorted(r.path for r in recordings.values())  # same bags, same order
    again = run_conversion(bags, result.output, ConvertConfig(), progress=False)
    assert again.up_to_date
    other = ConvertConfig.from_dict({"fps": 15})
    with pytest.raises(ConversionError, match="--overwrite"):
        run_conversion(bags, result.output, other)


def _convert(tmp_path, spec: RecordingSpec, config: dict, name="bag"):
    recording = write_recording(tmp_path / "bags" / name, spec)
    result = run_conversion(
        [tmp_path / "bags"], tmp_path / "out", ConvertConfig.from_dict(config), progress=False
    )
    return recording, result


def test_next_state_action_is_the_following_frame_state(tmp_path):
    _, result = _convert(
        tmp_path, RecordingSpec(duration_s=2.0), {"action": {"source": "next_state"}}
    )
    data = LeRobotV3Dataset(result.output, load_images=False).episode(0)
    np.testing.assert_array_equal(data.actions[:-1], data.states[1:])
    assert data.length >= 55  # the last frame has no next state: dropped


def test_split_episodes_at_instruction_changes(tmp_path):
    spec = RecordingSpec(duration_s=4.0, instructions=((0.0, "pick"), (2.0, "place")))
    _, split = _convert(tmp_path, spec, {"instruction": {"split_episodes": True}})
    tasks = [e["task"] for e in split.report["episodes"]]
    assert tasks == ["pick", "place"]
    lengths = [e["length"] for e in split.report["episodes"]]
    assert abs(lengths[0] - 60) <= 2 and abs(lengths[1] - 60) <= 2
    dataset = LeRobotV3Dataset(split.output, load_images=False)
    assert dataset.tasks == ["pick", "place"]
    _, whole = _convert(tmp_path / "b", spec, {})
    assert [e["task"] for e in whole.report["episodes"]] == ["pick"]


def test_task_from_config_overrides_instruction(tmp_path):
    _, result = _convert(tmp_path, RecordingSpec(duration_s=2.0), {"task": "stack the cups"})
    assert LeRobotV3Dataset(result.output, load_images=False).tasks == ["stack the cups"]


def test_camera_gap_splits_or_truncates_the_episode(tmp_path):
    spec = RecordingSpec(duration_s=6.0, camera_gap_s=(2.5, 4.0))
    _, split = _convert(tmp_path, spec, {})
    lengths = [e["length"] for e in split.report["episodes"]]
    assert len(lengths) == 2 and all(55 < n < 80 for n in lengths)
    assert all(e["match_rate"] == 1.0 for e in split.report["episodes"])  # stale tail trimmed
    assert "episode cut" in split.report["bags"][0]["dropped_segments"][0]["reason"]
    _, cut = _convert(tmp_path / "t", spec, {"timing": {"gap_policy": "truncate"}})
    assert [e["length"] for e in cut.report["episodes"]] == lengths[:1]


def test_stale_latched_state_is_filtered(tmp_path):
    _, result = _convert(tmp_path, RecordingSpec(duration_s=2.0, latched_state_age_s=30.0), {})
    data = LeRobotV3Dataset(result.output, load_images=False).episode(0)
    assert np.abs(data.states).max() < 1.0  # the latched message held 9.0 everywhere
    assert result.report["bags"][0]["messages"]["state"]["stale_latched"] == 1


def test_val_split_and_receive_time_source(tmp_path):
    for i in range(4):
        write_recording(tmp_path / "bags" / f"ep{i}", RecordingSpec(duration_s=1.5, seed=i))
    config = ConvertConfig.from_dict({"split": {"val_fraction": 0.25}, "time_source": "receive"})
    result = run_conversion([tmp_path / "bags"], tmp_path / "out", config, progress=False)
    assert [e["split"] for e in result.report["episodes"]] == ["train"] * 3 + ["val"]
    assert json.loads((result.output / "meta/info.json").read_text())["splits"] == {
        "train": "0:3",
        "val": "3:4",
    }
    assert len(LeRobotV3Dataset(result.output, split="val").episode_indices) == 1
    stats = json.loads((result.output / "meta/stats.json").read_text())
    assert stats["rynnvla"]["computed_on"] == "train" and stats["rynnvla"]["chunk_length"] == 20


def test_cli_converts_and_reports(tmp_path, capsys):
    write_recording(tmp_path / "bags" / "one", RecordingSpec(duration_s=1.5))
    out = tmp_path / "out"
    code = convert_main([str(tmp_path / "bags"), "-o", str(out), "--quiet", "--task", "wave"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "'wave'" in printed
    assert convert_main([str(tmp_path / "bags"), "-o", str(out), "--quiet", "--fps", "0"]) == 2
    assert convert_main([str(tmp_path / "nothing"), "-o", str(out), "--quiet"]) == 2


def test_image_size_mismatch_between_bags_is_skipped_or_resized(tmp_path):
    write_recording(tmp_path / "bags" / "a", RecordingSpec(duration_s=1.5))
    write_recording(tmp_path / "bags" / "b", RecordingSpec(duration_s=1.5, image_size=(120, 160)))
    result = run_conversion([tmp_path / "bags"], tmp_path / "out", ConvertConfig(), progress=False)
    assert result.episodes == 1
    reason = result.report["skipped_segments"][0]["reason"]
    assert "(120, 160)" in reason and "(96, 128)" in reason and "resize" in reason
    resize = {name: {"resize": [96, 128]} for name in ("front", "wrist")}
    cameras = {
        name: {**resize[name], "topic": f"/camera/{name}/image_raw"} for name in ("front", "wrist")
    }
    resized = run_conversion(
        [tmp_path / "bags"],
        tmp_path / "resized",
        ConvertConfig.from_dict({"cameras": cameras}),
        progress=False,
    )
    assert resized.episodes == 2
    assert LeRobotV3Dataset(resized.output).episode_frames(1, "front").shape[1:] == (96, 128, 3)


def test_humble_typestore_mcap_and_av1(tmp_path):
    recording = write_recording(
        tmp_path / "bags" / "humble",
        RecordingSpec(duration_s=1.5, storage="mcap", typestore="ros2_humble"),
    )
    config = ConvertConfig.from_dict({"typestore": "ros2_humble", "video": {"codec": "av1"}})
    result = run_conversion([tmp_path / "bags"], tmp_path / "out", config, progress=False)
    dataset = LeRobotV3Dataset(result.output)
    assert dataset.info["features"]["observation.images.front"]["info"]["video.codec"] == "av1"
    check_episode(dataset, 0, recording, result.report["episodes"][0])
