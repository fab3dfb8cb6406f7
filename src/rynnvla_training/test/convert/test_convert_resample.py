"""The streaming as-of resampler against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from rynnvla_training.convert.resample import NS_PER_S, AsOfResampler, StreamSpec

MS = 1_000_000


def _run(resampler, events):
    """events: (stream, stamp_ns, payload) in push order -> all frames."""
    frames = []
    for name, stamp, payload in events:
        frames += resampler.push(name, stamp, payload)
    return frames + resampler.finish()


def _streams(rng, duration_s=3.0, jitter_ms=2.0, latency_ms=(2, 15)):
    """Two jittered streams (30 Hz 'cam', 200 Hz 'joint') pushed in receive order."""
    events = []
    for name, hz in (("cam", 30.0), ("joint", 200.0)):
        times = np.arange(0.05, duration_s, 1 / hz) + rng.normal(0, jitter_ms / 1e3, 1)[0]
        times = np.sort(times + rng.normal(0, jitter_ms / 1e3, times.shape))
        for i, t in enumerate(times):
            stamp = int(t * NS_PER_S)
            received = stamp + int(rng.uniform(*latency_ms) * MS)
            events.append((received, name, stamp, (name, i)))
    events.sort()
    return [(name, stamp, payload) for _, name, stamp, payload in events]


def _brute_force(events, name, time_ns):
    stamps = [(s, p) for n, s, p in events if n == name and s <= time_ns]
    return max(stamps)[1] if stamps else None


def test_as_of_matches_brute_force_and_never_uses_the_future():
    rng = np.random.default_rng(0)
    events = _streams(rng)
    specs = [StreamSpec("cam", 100 * MS), StreamSpec("joint", 50 * MS)]
    frames = _run(AsOfResampler(specs, 30, reorder_window_ns=50 * MS), events)
    assert len(frames) > 80
    for frame in frames:
        for name in ("cam", "joint"):
            sample = frame.samples[name]
            assert sample.stamp_ns <= frame.time_ns  # never from the future
            assert sample.payload == _brute_force(events, name, frame.time_ns)
    times = np.array([f.time_ns for f in frames])
    np.testing.assert_allclose(np.diff(times), NS_PER_S / 30, atol=1)  # fixed rate


def test_frames_trimmed_to_where_every_stream_exists():
    events = [("a", t * MS, t) for t in range(0, 1000, 10)]
    events += [("b", t * MS, t) for t in range(300, 700, 10)]
    events.sort(key=lambda e: e[1])
    specs = [StreamSpec("a", 50 * MS), StreamSpec("b", 50 * MS)]
    frames = _run(AsOfResampler(specs, 10, reorder_window_ns=0), events)
    times = [f.time_ns // MS for f in frames]
    assert times[0] == 300  # first time both exist
    assert times[-1] <= 690  # last message of "b"
    assert times == list(range(300, 700, 100))


def test_out_of_order_within_window_is_reordered_beyond_is_dropped():
    specs = [StreamSpec("a", 100 * MS)]
    resampler = AsOfResampler(specs, 10, reorder_window_ns=30 * MS)
    events = [("a", t * MS, t) for t in (0, 10, 30, 20, 40, 50)]  # 20 arrives late, in window
    events += [("a", t * MS, t) for t in range(60, 400, 10)]
    events.insert(20, ("a", 5 * MS, "old"))  # far older than what was already used: dropped
    frames = _run(resampler, events)
    assert [f.samples["a"].payload for f in frames[:3]] == [0, 100, 200]
    assert all(f.samples["a"].payload != "old" for f in frames)
    assert resampler.counters["a"].out_of_order == 1


def test_stale_latched_leading_message_is_dropped():
    specs = [StreamSpec("a", 100 * MS), StreamSpec("b", 100 * MS)]
    resampler = AsOfResampler(specs, 10, reorder_window_ns=0, latched_gap_ns=NS_PER_S)
    events = [("a", -30 * NS_PER_S, "latched")]  # published 30 s before the recording
    events += [(name, t * MS, t) for t in range(0, 500, 10) for name in ("a", "b")]
    frames = _run(resampler, events)
    assert frames[0].time_ns == 0
    assert all(f.samples["a"].payload != "latched" for f in frames)
    assert resampler.counters["a"].stale_latched == 1


def test_stalled_stream_does_not_block_forever_and_memory_stays_bounded():
    specs = [StreamSpec("a", 50 * MS), StreamSpec("b", 50 * MS)]
    resampler = AsOfResampler(specs, 10, reorder_window_ns=0, max_wait_ns=NS_PER_S)
    emitted_while_stalled = 0
    for t in range(0, 20_000, 10):  # "b" stops at 1 s; "a" goes on for 20 s
        if t < 1000:
            resampler.push("b", t * MS, t)
        emitted_while_stalled += len(resampler.push("a", t * MS, t))
        pending = len(resampler._streams["a"].pending)
        assert pending <= 110  # about max_wait of 100 Hz messages, never the whole bag
    assert emitted_while_stalled > 150  # frames kept flowing (stale for "b")
    final = resampler.finish()
    assert final == []  # nothing past the end of "b" that was not already emitted


def test_sparse_stream_neither_holds_frames_nor_ends_them():
    specs = [
        StreamSpec("a", 50 * MS),
        StreamSpec("text", None, filter_latched=False, sparse=True),
    ]
    resampler = AsOfResampler(specs, 10, reorder_window_ns=0)
    events = [("text", 0, "first")] + [("a", t * MS, t) for t in range(0, 1000, 10)]
    events.insert(50, ("text", 495 * MS, "second"))
    frames = _run(resampler, events)
    assert frames[-1].time_ns == 900 * MS
    texts = [f.samples["text"].payload for f in frames]
    assert texts == ["first"] * 5 + ["second"] * 5


def test_missing_stream_reported():
    specs = [StreamSpec("a", 50 * MS), StreamSpec("b", 50 * MS)]
    resampler = AsOfResampler(specs, 10)
    assert _run(resampler, [("a", t * MS, t) for t in range(0, 500, 10)]) == []
    assert resampler.missing_streams() == ["b"]


def test_bad_specs_rejected():
    with pytest.raises(ValueError, match="unique"):
        AsOfResampler([StreamSpec("a", 1), StreamSpec("a", 1)], 10)
    with pytest.raises(ValueError, match="required"):
        AsOfResampler([StreamSpec("a", 1, required=False)], 10)
