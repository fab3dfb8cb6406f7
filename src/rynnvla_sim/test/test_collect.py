"""Recorded demonstration bags: topics, types, rates, stamps vs receive times, both storages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from rynnvla_policy.conversions import image_to_rgb, stamp_to_ns
from rynnvla_sim.collect import SUMMARY, CollectConfig, collect, main
from rynnvla_sim.env import ArmSimEnv, SimConfig
from rynnvla_sim.recording import EpisodeRecorder, RecordSpec
from rynnvla_sim.tasks import TASKS

MS = 1_000_000
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
TRAJ = "/arm_controller/joint_trajectory"


def read_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(log_time_ns, message)], and the msgtype of each topic under '__types__'."""
    out: dict = {"__types__": {}}
    with AnyReader([path]) as reader:
        for conn in reader.connections:
            out["__types__"][conn.topic] = conn.msgtype
        for conn, log_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((log_ns, reader.deserialize(raw, conn.msgtype)))
    return out


@pytest.fixture(scope="module")
def env():
    env = ArmSimEnv(SimConfig(image_width=64, image_height=48))
    yield env
    env.close()


def record(env, tmp_path, storage, image_format="raw", max_episode_s=2.0):
    spec = RecordSpec(
        image_format=image_format,
        image_width=64,
        image_height=48,
        max_episode_s=max_episode_s,
        camera_drop_probability=0.05,
    )
    bag = tmp_path / f"bag_{storage}_{image_format}"
    result = EpisodeRecorder(env, spec, storage).record("block_to_plate", 3, bag)
    return result, read_bag(bag)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_has_the_live_topics_types_and_rates(env, tmp_path, storage):
    result, bag = record(env, tmp_path, storage)
    assert bag["__types__"] == {
        "/instruction": "std_msgs/msg/String",
        "/joint_states": "sensor_msgs/msg/JointState",
        TRAJ: "trajectory_msgs/msg/JointTrajectory",
        "/camera/front/image_raw": "sensor_msgs/msg/Image",
        "/camera/wrist/image_raw": "sensor_msgs/msg/Image",
    }
    duration = result.duration_s
    assert duration == pytest.approx(2.0, abs=0.01)
    counts = {topic: len(msgs) for topic, msgs in bag.items() if topic != "__types__"}
    assert counts == result.message_counts
    assert counts["/instruction"] == 1
    assert abs(counts["/joint_states"] - 200 * duration) <= 1
    assert abs(counts[TRAJ] - 30 * duration) <= 1
    for camera in ("front", "wrist"):
        frames = counts[f"/camera/{camera}/image_raw"]
        assert frames + result.dropped_frames[camera] == pytest.approx(30 * duration, abs=1)
    assert sum(result.dropped_frames.values()) > 0  # 5% drop rate over 120 frames (seeded)

    # the instruction comes first, once, like a latched topic
    all_logs = sorted(t for topic, msgs in bag.items() if topic != "__types__" for t, _ in msgs)
    ((instr_log, instruction),) = bag["/instruction"]
    assert instruction.data == TASKS["block_to_plate"] and instr_log == all_logs[0]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_stamps_are_capture_times_and_receive_times_come_later(env, tmp_path, storage):
    _, bag = record(env, tmp_path, storage)
    latencies = {}
    for topic, msgs in bag.items():
        if topic in ("__types__", "/instruction"):
            continue
        logs = np.array([t for t, _ in msgs])
        stamps = np.array([stamp_to_ns(m.header.stamp) for _, m in msgs])
        assert np.all(np.diff(logs) > 0), f"{topic}: receive times not increasing"
        assert np.all(np.diff(stamps) > 0), f"{topic}: stamps not increasing"
        latencies[topic] = (logs - stamps) / MS  # (N,) ms
    js = latencies["/joint_states"]
    assert np.all(js > 0) and np.all(js < 10) and js.std() > 0.05  # ~1 ms, jittered
    assert np.all(latencies[TRAJ] > 0) and np.all(latencies[TRAJ] < 10)
    for camera in ("front", "wrist"):
        lat = latencies[f"/camera/{camera}/image_raw"]
        assert np.all(lat >= 15) and np.all(lat < 120) and lat.std() > 0.5  # tens of ms
    # joint states: 200 Hz on the 2 ms control grid (5 ms apart on average, 4-6 ms each)
    js_stamps = np.array([stamp_to_ns(m.header.stamp) for _, m in bag["/joint_states"]])
    gaps = np.diff(js_stamps) / MS
    assert set(np.unique(gaps)) <= {4.0, 5.0, 6.0} and gaps.mean() == pytest.approx(5, abs=0.1)
    # both cameras are captured at the same instants
    front = {stamp_to_ns(m.header.stamp) for _, m in bag["/camera/front/image_raw"]}
    wrist = {stamp_to_ns(m.header.stamp) for _, m in bag["/camera/wrist/image_raw"]}
    assert len(front & wrist) >= min(len(front), len(wrist)) - 6


def test_bag_messages_hold_the_episode(env, tmp_path):
    _, bag = record(env, tmp_path, "sqlite3")
    _, first_state = bag["/joint_states"][0]
    assert tuple(first_state.name) == JOINTS
    assert len(first_state.position) == 6 and len(first_state.velocity) == 6
    _, image = bag["/camera/front/image_raw"][-1]
    assert (image.width, image.height, image.encoding) == (64, 48, "rgb8")
    assert image_to_rgb(image).std() > 5
    # commands: one point each, one control period ahead, stamped at the command time, and
    # the arm follows them (measured joints approach the commanded targets)
    commands = [m for _, m in bag[TRAJ]]
    for msg in commands:
        assert tuple(msg.joint_names) == JOINTS and len(msg.points) == 1
        assert stamp_to_ns(msg.points[0].time_from_start) == pytest.approx(
            33.33 * MS, abs=0.01 * MS
        )
    targets = np.array([m.points[0].positions for m in commands])  # (N, 6)
    assert np.ptp(targets[:, :5], axis=0).max() > 0.05  # the expert moves the arm
    t_cmd = stamp_to_ns(commands[30].header.stamp) + 300 * MS  # 0.3 s after command 30
    states = [(stamp_to_ns(m.header.stamp), m) for _, m in bag["/joint_states"]]
    _, later = min(states, key=lambda s: abs(s[0] - t_cmd))
    error = np.abs(np.array(later.position[:5]) - targets[min(39, len(targets) - 1), :5])
    assert error.max() < 0.15


def test_jpeg_bags_use_compressed_images(env, tmp_path):
    _, bag = record(env, tmp_path, "mcap", image_format="jpeg", max_episode_s=0.5)
    topic = "/camera/wrist/image_raw/compressed"
    assert bag["__types__"][topic] == "sensor_msgs/msg/CompressedImage"
    _, frame = bag[topic][0]
    assert "jpeg" in frame.format and image_to_rgb(frame).shape == (48, 64, 3)


def test_dry_run_gives_the_same_outcome_as_a_recording(env, tmp_path):
    spec = RecordSpec(image_width=64, image_height=48, max_episode_s=1.0)
    recorder = EpisodeRecorder(env, spec, "sqlite3")
    dry = recorder.record("pen_to_holder", 5, None)
    q_dry = env.joint_positions()
    wet = recorder.record("pen_to_holder", 5, tmp_path / "wet")
    q_wet = env.joint_positions()
    assert dry.bag == "" and dry.message_counts == {} and not (tmp_path / "dry").exists()
    assert dry.duration_s == wet.duration_s
    # rendering and writing do not touch the physics: the same motion to the last bit
    np.testing.assert_array_equal(q_dry, q_wet)
    final = read_bag(tmp_path / "wet")["/joint_states"][-1][1]
    np.testing.assert_allclose(final.position, q_wet, atol=0.02)


def test_collect_runs_workers_keeps_successes_and_resumes(tmp_path, capsys):
    out = tmp_path / "demos"
    argv = ["--task", "block_to_plate", "--episodes", "2", "--out", str(out), "--workers", "2"]
    argv += ["--size", "32x24", "--camera-rate", "10", "--joint-state-rate", "100", "--quiet"]
    argv += ["--storage", "mcap", "--seed", "4"]
    assert main(argv) == 0
    bags = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert bags == ["block_to_plate_s000004", "block_to_plate_s000005"]  # no .partial left
    for name in bags:
        meta = json.loads((out / name / "episode.json").read_text())
        assert meta["success"] and meta["task_id"] == "block_to_plate"
        assert (out / name / "metadata.yaml").is_file() and list((out / name).glob("*.mcap"))
        counts = {c: n for c, n in meta["message_counts"].items()}
        assert counts["/camera/front/image_raw"] + meta["dropped_frames"]["front"] > 0
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["realtime_factor"] > 0
    assert [e["seed"] for e in summary["tasks"]["block_to_plate"]["episodes"]] == [4, 5]
    assert "2 episodes" in capsys.readouterr().out
    # a re-run finds both episodes and records nothing
    assert main(argv) == 0
    assert json.loads((out / SUMMARY).read_text())["recorded_sim_seconds"] == 0


def test_failed_episodes_are_discarded_or_kept_when_asked(tmp_path):
    spec = RecordSpec(image_width=32, image_height=24, camera_rate_hz=10.0, max_episode_s=0.3)
    config = CollectConfig(
        tasks=("block_to_plate",), episodes=1, out=tmp_path / "a", workers=1, spec=spec
    )
    with pytest.raises(RuntimeError, match="failed too often"):
        collect(config, progress=False)  # 0.3 s is too short for any success
    assert not [p for p in (tmp_path / "a").iterdir() if p.is_dir()]
    summary = json.loads((tmp_path / "a" / SUMMARY).read_text())
    assert summary["tasks"]["block_to_plate"]["discarded_seeds"] == [0, 1, 2, 3, 4, 5]
    kept = CollectConfig(
        tasks=("block_to_plate",),
        episodes=1,
        out=tmp_path / "b",
        workers=1,
        spec=spec,
        keep_failed=True,
    )
    collect(kept, progress=False)
    meta = json.loads((tmp_path / "b" / "block_to_plate_s000000" / "episode.json").read_text())
    assert meta["success"] is False


def test_bad_cli_arguments_name_the_value(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--task", "juggle", "--episodes", "1", "--out", str(tmp_path)])
    assert "juggle" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--task", "all", "--episodes", "1", "--out", str(tmp_path), "--size", "big"])
    assert "'big'" in capsys.readouterr().err
