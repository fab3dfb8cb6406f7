"""PolicyRunner on a tiny random checkpoint: API contract, determinism, fast == naive."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from rynnvla_policy.core import Checkpoint, PolicyRunner, ProcessorError


@pytest.fixture
def runner(tiny_checkpoint) -> PolicyRunner:
    return PolicyRunner.from_pretrained(tiny_checkpoint, device="cpu")


def test_contract_matches_checkpoint(runner):
    contract = runner.contract
    assert contract.camera_names == ("front", "wrist")
    assert contract.state_dim == contract.action_dim == 6
    assert contract.joint_names[-1] == "gripper"
    assert contract.chunk_length == 20
    assert contract.fps == 30.0
    assert contract.absolute_dims == (5,)


def test_infer_returns_absolute_chunk_latent_and_timings(runner, make_observation):
    chunk = runner.infer(make_observation())
    assert chunk.positions.shape == (20, 6)
    assert chunk.positions.dtype == np.float64
    assert np.all(np.isfinite(chunk.positions))
    assert chunk.latent.shape == (32,)
    assert chunk.latent.dtype == np.float32
    assert set(chunk.timings_ms) == {"preprocess", "forward", "decode", "total"}
    assert chunk.prompt_tokens <= 200


def test_infer_is_deterministic_on_cpu_and_after_reset(runner, make_observation):
    obs = make_observation(seed=3)
    first = runner.infer(obs)
    second = runner.infer(obs)
    runner.reset()
    third = runner.infer(obs)
    np.testing.assert_array_equal(first.positions, second.positions)
    np.testing.assert_array_equal(first.positions, third.positions)


def test_fast_path_matches_naive_reference_path(runner, tiny_checkpoint, make_observation):
    naive = PolicyRunner.from_pretrained(tiny_checkpoint, device="cpu")
    for seed in range(3):
        obs = make_observation(seed=seed)
        fast, slow = runner.infer(obs), naive.infer_naive(obs)
        np.testing.assert_allclose(fast.positions, slow.positions, rtol=0, atol=1e-5)
        np.testing.assert_allclose(fast.latent, slow.latent, rtol=0, atol=1e-5)


def test_missing_camera_is_an_error_naming_it(runner, make_observation):
    obs = make_observation()
    del obs.images["wrist"]
    with pytest.raises(ProcessorError, match="wrist"):
        runner.infer(obs)


def test_wrong_state_size_is_an_error(runner, make_observation):
    obs = make_observation()
    obs.state = np.zeros(5)
    with pytest.raises(ProcessorError, match=r"\(6,\)"):
        runner.infer(obs)


def test_history_frames_and_instruction_change(tiny_checkpoint, make_observation):
    """With 2 frames of history the prompt grows to two frames; a new instruction starts over;
    the fast path stays equal to the naive one throughout."""
    checkpoints = [Checkpoint.from_pretrained(tiny_checkpoint) for _ in range(2)]
    for ckpt in checkpoints:
        ckpt.model.config = ckpt.model.config.replace(inference_history=2)
    fast, naive = PolicyRunner(checkpoints[0]), PolicyRunner(checkpoints[1])
    tokens = []
    steps = [
        (0, "put the pen in the pen holder"),
        (1, "put the pen in the pen holder"),
        (2, "put the pen in the pen holder"),
        (3, "put the strawberry in the bowl"),
    ]
    for seed, text in steps:
        obs = make_observation(seed=seed, instruction=text)
        a, b = fast.infer(obs), naive.infer_naive(obs)
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-5)
        tokens.append(a.prompt_tokens)
    assert tokens[1] == tokens[2] > tokens[0]  # two frames once the history is full
    assert tokens[3] < tokens[2]  # new instruction: history restarted


def test_cameras_of_different_sizes(runner, make_observation):
    obs = make_observation()
    obs.images["wrist"] = np.zeros((120, 160, 3), np.uint8)
    chunk = runner.infer(obs)
    assert chunk.positions.shape == (20, 6)


@pytest.fixture
def threads():
    """Set torch's intra-op threads for one test; the session's 2 afterwards."""
    yield torch.set_num_threads
    torch.set_num_threads(2)


def test_two_cpu_streams_match_the_one_thread_path(tiny_checkpoint, make_observation, threads):
    """With 2 intra-op threads the step runs on two threads (cameras and prompt chunks side by
    side); with 1 it runs in one pass. Same actions up to float rounding, same prompt."""
    pipelined = PolicyRunner.from_pretrained(tiny_checkpoint)
    sequential = PolicyRunner.from_pretrained(tiny_checkpoint)
    for seed in range(3):
        obs = make_observation(seed=seed)
        threads(2)
        assert pipelined.uses_two_streams
        a = pipelined.infer(obs)
        assert torch.get_num_threads() == 2  # lowered inside the step, restored after
        threads(1)
        assert not sequential.uses_two_streams
        b = sequential.infer(obs)
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-5)
        np.testing.assert_allclose(a.latent, b.latent, rtol=0, atol=1e-5)
        assert a.prompt_tokens == b.prompt_tokens
    pipelined.close()
    threads(2)
    np.testing.assert_allclose(pipelined.infer(obs).positions, a.positions, rtol=0, atol=0)


def test_a_failing_stream_leaves_the_runner_usable(tiny_checkpoint, make_observation, threads):
    """A camera failing on the worker thread propagates; the prefix cache is cropped back, so
    the next step equals a fresh runner's."""
    threads(2)
    runner = PolicyRunner.from_pretrained(tiny_checkpoint)
    runner.infer(make_observation(seed=0))
    real_encode = runner.cameras.encode_one

    def broken_second_camera(pixels):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("wrist encoder fault")
        return real_encode(pixels)

    runner.cameras.encode_one = broken_second_camera
    with pytest.raises(RuntimeError, match="wrist encoder fault"):
        runner.infer(make_observation(seed=1))
    assert torch.get_num_threads() == 2
    prefix = len(runner._prefix_ids)
    assert [layer.get_seq_length() for layer in runner._prefix_cache.layers] == [prefix] * 4
    runner.cameras.encode_one = real_encode  # same instruction: the cached prefix is reused
    fresh = PolicyRunner.from_pretrained(tiny_checkpoint)
    obs = make_observation(seed=2)
    np.testing.assert_array_equal(runner.infer(obs).positions, fresh.infer(obs).positions)
