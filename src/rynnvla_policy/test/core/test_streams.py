"""TwoStreams / LayerHandoff: two real threads, results, errors, intra-op thread counts."""

from __future__ import annotations

import threading

import pytest
import torch

from rynnvla_policy.core.streams import LayerHandoff, StreamAborted, TwoStreams


@pytest.fixture
def streams():
    s = TwoStreams()
    yield s
    s.close()


def _where() -> tuple[str, int]:
    return threading.current_thread().name, torch.get_num_threads()


def test_both_sides_run_on_their_own_thread_with_half_the_threads(streams):
    torch.set_num_threads(2)
    mine, theirs = streams.run(_where, _where)
    assert mine == (threading.current_thread().name, 1)
    assert theirs[0].startswith("rynnvla-stream") and theirs[1] == 1
    assert torch.get_num_threads() == 2  # restored


def test_failure_of_mine_releases_the_waiting_worker_and_propagates(streams):
    torch.set_num_threads(2)
    handoff = LayerHandoff(2)

    def mine():
        handoff.done(0)
        raise RuntimeError("chunk one broke")

    def theirs():
        handoff.wait(0)
        handoff.wait(1)  # never done: released by abort
        return "unreachable"

    with pytest.raises(RuntimeError, match="chunk one broke"):
        streams.run(mine, theirs, on_mine_failed=handoff.abort)
    assert torch.get_num_threads() == 2
    assert streams.run(lambda: 1, lambda: 2) == (1, 2)  # still usable


def test_failure_of_theirs_propagates_after_mine_finished(streams):
    torch.set_num_threads(2)
    finished = []

    def theirs():
        raise ValueError("camera two broke")

    with pytest.raises(ValueError, match="camera two broke"):
        streams.run(lambda: finished.append(True), theirs)
    assert finished == [True]
    assert torch.get_num_threads() == 2


def test_handoff_abort_names_the_layer():
    handoff = LayerHandoff(3)
    handoff.abort()
    with pytest.raises(StreamAborted, match="before layer 2"):
        handoff.wait(2)


def test_two_streams_only_on_cpu_with_two_threads():
    torch.set_num_threads(1)
    assert not TwoStreams.worthwhile(torch.device("cpu"))
    torch.set_num_threads(2)
    assert TwoStreams.worthwhile(torch.device("cpu"))
    assert not TwoStreams.worthwhile(torch.device("cuda"))
