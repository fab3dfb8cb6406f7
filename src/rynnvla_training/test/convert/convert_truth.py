"""Test helpers: check a converted episode against a synthetic recording's ground truth, and
rewrite bags to inject faults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rynnvla_training.convert.synthetic import (
    START_NS,
    Recording,
    action_truth,
    joint_truth,
    read_frame_code,
)

NS_PER_S = 1_000_000_000


def as_of(truth: list[tuple[int, int, object]], times_ns: np.ndarray) -> tuple[np.ndarray, list]:
    """Latest ground-truth message stamped at or before each time -> (stamps, values)."""
    ordered = sorted(truth, key=lambda entry: entry[0])
    stamps = np.array([entry[0] for entry in ordered], dtype=np.int64)
    slots = np.searchsorted(stamps, times_ns, side="right") - 1
    assert np.all(slots >= 0), "a frame precedes the first message: trimming failed"
    return stamps[slots], [ordered[s][2] for s in slots]


def check_episode(dataset, episode: int, recording: Recording, report_episode: dict) -> dict:
    """Asserts the episode equals exact as-of sampling of the recording; returns offsets (s)."""
    data = dataset.episode(episode)
    fps = dataset.fps
    times = report_episode["start_ns"] + (np.arange(data.length) * NS_PER_S) // fps  # (N,)
    offsets = {}
    for camera in dataset.cameras:
        stamps, numbers = as_of(recording.messages[f"camera.{camera}"], times)
        codes = [read_frame_code(frame) for frame in dataset.episode_frames(episode, camera)]
        assert codes == numbers, f"{camera}: frames differ from as-of ground truth"
        offsets[camera] = (times - stamps) / NS_PER_S
    stamps, state_times = as_of(recording.messages["state"], times)
    np.testing.assert_allclose(data.states, joint_truth(np.array(state_times)), atol=1e-6)
    offsets["state"] = (times - stamps) / NS_PER_S
    if "action" in recording.messages:
        stamps, action_times = as_of(recording.messages["action"], times)
        np.testing.assert_allclose(data.actions, action_truth(np.array(action_times)), atol=1e-6)
        offsets["action"] = (times - stamps) / NS_PER_S
    for name, values in offsets.items():
        assert np.all(values >= 0), f"{name}: a sample from the future"
    return offsets


def frame_time_s(report_episode: dict, frame: int, fps: int) -> float:
    """Seconds since the recording start of a dataset frame."""
    return (report_episode["start_ns"] + frame * NS_PER_S // fps - START_NS) / NS_PER_S


def rewrite_bag(source: Path, target: Path, mutate: Callable[[str, int, object], object | None]):
    """Copies a bag message by message through ``mutate(topic, log_ns, msg)`` (None drops)."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    with AnyReader([source], default_typestore=store) as reader, Writer(target, version=9) as out:
        connections = {
            c.topic: out.add_connection(c.topic, c.msgtype, typestore=store)
            for c in reader.connections
        }
        for connection, log_ns, raw in reader.messages():
            message = mutate(connection.topic, log_ns, reader.deserialize(raw, connection.msgtype))
            if message is not None:
                data = store.serialize_cdr(message, connection.msgtype)
                out.write(connections[connection.topic], log_ns, data)
