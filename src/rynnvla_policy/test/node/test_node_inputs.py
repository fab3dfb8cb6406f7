"""Input buffers: age checks per stream, no stale pairing, stamps sanity."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rynnvla_policy.node.inputs import NS, InputBuffers, Snapshot, StaleInputs, StampError

MS = NS // 1000


def buffers():
    return InputBuffers({"front": 0.1, "wrist": 0.2}, "joint_states", 0.05, max_future_stamp_s=0.5)


def fill(buf, stamp_ns):
    img = np.zeros((4, 4, 3), np.uint8)
    buf.put("front", img, stamp_ns)
    buf.put("wrist", img, stamp_ns)
    buf.put("joint_states", np.zeros(6), stamp_ns)


def test_missing_streams_are_reported():
    buf = buffers()
    buf.put("front", np.zeros((4, 4, 3), np.uint8), 10 * NS)
    result = buf.snapshot(10 * NS)
    assert isinstance(result, StaleInputs)
    assert result.streams == ["joint_states", "wrist"]
    assert "no message received yet" in result.describe()


def test_fresh_streams_give_a_snapshot_with_newest_camera_stamp():
    buf = buffers()
    fill(buf, 10 * NS)
    buf.put("wrist", np.ones((4, 4, 3), np.uint8), 10 * NS + 20 * MS)
    snap = buf.snapshot(10 * NS + 30 * MS)
    assert isinstance(snap, Snapshot)
    assert snap.stamp_ns == 10 * NS + 20 * MS
    assert snap.images["wrist"].max() == 1


def test_each_stream_has_its_own_max_age():
    buf = buffers()
    fill(buf, 10 * NS)
    result = buf.snapshot(10 * NS + 150 * MS)  # front (100 ms) and joints (50 ms) too old
    assert isinstance(result, StaleInputs)
    assert result.streams == ["front", "joint_states"]
    assert "last sample 150 ms old (max_age 100 ms)" in result.reasons["front"]


def test_a_fresh_camera_is_never_paired_with_a_stale_one():
    buf = buffers()
    fill(buf, 10 * NS)
    buf.put("wrist", np.zeros((4, 4, 3), np.uint8), 10 * NS + 300 * MS)
    buf.put("joint_states", np.zeros(6), 10 * NS + 300 * MS)
    result = buf.snapshot(10 * NS + 310 * MS)
    assert isinstance(result, StaleInputs) and result.streams == ["front"]


def test_out_of_order_samples_are_ignored_but_clock_resets_are_taken():
    buf = buffers()
    fill(buf, 10 * NS)
    buf.put("front", np.ones((4, 4, 3), np.uint8), 10 * NS - 10 * MS)  # late delivery
    assert buf.latest("front").stamp_ns == 10 * NS
    buf.put("front", np.ones((4, 4, 3), np.uint8), 1 * NS)  # simulation restarted
    assert buf.latest("front").stamp_ns == 1 * NS


def test_stamp_checks():
    buf = buffers()
    with pytest.raises(StampError, match=r"front: header\.stamp is zero"):
        buf.check_stamp("front", 0, 10 * NS)
    with pytest.raises(StampError, match=r"2.000 s ahead of this node's clock"):
        buf.check_stamp("front", 12 * NS, 10 * NS)
    buf.check_stamp("front", 10 * NS + 100 * MS, 10 * NS)


def test_wait_for_new_wakes_when_every_camera_has_a_new_frame():
    buf = buffers()
    fill(buf, 10 * NS)
    seen = buf.sequences()
    assert not buf.wait_for_new(seen, timeout_s=0.01)
    done = threading.Event()

    def waiter():
        if buf.wait_for_new(seen, timeout_s=5.0):
            done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    buf.put("front", np.zeros((4, 4, 3), np.uint8), 11 * NS)
    assert not done.wait(0.05)  # the wrist frame is still the old one
    buf.put("wrist", np.zeros((4, 4, 3), np.uint8), 11 * NS)
    thread.join(5.0)
    assert done.is_set()
