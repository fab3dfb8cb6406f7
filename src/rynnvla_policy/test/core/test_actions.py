"""Relative action chunks, normalisation and statistics (rynnvla_policy.core.actions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rynnvla_policy.core.actions import (
    MIN_SCALE,
    ActionNormalizer,
    ActionStatistics,
    RelativeActionTransform,
    _RowReservoir,
    build_relative_chunks,
    compute_statistics,
)

ABSOLUTE_DIM_CHOICES = [(), (5,), (0, 5), (2, 3), (0, 1, 2, 3, 4, 5)]


def _grid_values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Joint values on a 2^-12 grid (like encoder ticks): float64 arithmetic on them is exact."""
    return rng.integers(-8192, 8192, size=shape).astype(np.float64) / 4096.0


def _stats(dim: int = 6, seed: int = 0) -> ActionStatistics:
    rng = np.random.default_rng(seed)
    low = rng.uniform(-2.0, -0.5, dim)
    return ActionStatistics(
        rel_mean_action=rng.normal(size=dim),
        rel_std_action=rng.uniform(0.1, 2.0, dim),
        rel_min_action=low,
        rel_max_action=low + rng.uniform(0.5, 3.0, dim),
        mean_state=rng.normal(size=dim),
        std_state=rng.uniform(0.1, 2.0, dim),
    )


# ---- RelativeActionTransform -----------------------------------------------------------------
def test_to_relative_follows_the_definition():
    transform = RelativeActionTransform(absolute_dims=(1,))
    state = np.array([1.0, 10.0])
    actions = np.array([[2.0, 0.5], [4.0, 0.25], [3.0, 1.0]])  # (T=3, D=2)
    expected = np.array([[1.0, 0.5], [2.0, 0.25], [-1.0, 1.0]])  # a0 - s, a1 - a0, a2 - a1
    np.testing.assert_array_equal(transform.to_relative(actions, state), expected)


@pytest.mark.parametrize("absolute_dims", ABSOLUTE_DIM_CHOICES)
def test_round_trip_is_exact_on_grid_values(absolute_dims):
    rng = np.random.default_rng(1)
    transform = RelativeActionTransform(absolute_dims)
    actions, state = _grid_values(rng, (20, 6)), _grid_values(rng, (6,))
    relative = transform.to_relative(actions, state)
    assert relative.dtype == np.float64
    np.testing.assert_array_equal(transform.to_absolute(relative, state), actions)
    # absolute dims are passed through unchanged, relative dims are not
    np.testing.assert_array_equal(relative[:, list(absolute_dims)], actions[:, list(absolute_dims)])
    batch_actions, batch_state = _grid_values(rng, (4, 20, 6)), _grid_values(rng, (4, 6))
    batch_relative = transform.to_relative(batch_actions, batch_state)
    np.testing.assert_array_equal(transform.to_absolute(batch_relative, batch_state), batch_actions)
    np.testing.assert_array_equal(
        batch_relative[2], transform.to_relative(batch_actions[2], batch_state[2])
    )


@pytest.mark.parametrize("absolute_dims", ABSOLUTE_DIM_CHOICES)
def test_round_trip_on_arbitrary_float64_is_within_rounding(absolute_dims):
    rng = np.random.default_rng(2)
    transform = RelativeActionTransform(absolute_dims)
    actions, state = rng.uniform(-3.2, 3.2, (8, 20, 6)), rng.uniform(-3.2, 3.2, (8, 6))
    restored = transform.to_absolute(transform.to_relative(actions, state), state)
    # Only float64 rounding of the differences remains (~1e-15 for 20 steps of radians).
    np.testing.assert_allclose(restored, actions, rtol=0, atol=1e-13)


@pytest.mark.parametrize("absolute_dims", [(), (5,)])
def test_torch_matches_numpy_and_round_trips(absolute_dims):
    rng = np.random.default_rng(3)
    transform = RelativeActionTransform(absolute_dims)
    actions, state = _grid_values(rng, (3, 20, 6)), _grid_values(rng, (3, 6))
    relative = transform.to_relative(torch.from_numpy(actions), torch.from_numpy(state))
    assert isinstance(relative, torch.Tensor) and relative.dtype == torch.float64
    np.testing.assert_array_equal(relative.numpy(), transform.to_relative(actions, state))
    restored = transform.to_absolute(relative, torch.from_numpy(state))
    np.testing.assert_array_equal(restored.numpy(), actions)


def test_transform_validates_dims_and_shapes():
    with pytest.raises(ValueError, match="out of range for action_dim 6"):
        RelativeActionTransform((6,)).to_relative(np.zeros((20, 6)), np.zeros(6))
    with pytest.raises(ValueError, match="duplicates"):
        RelativeActionTransform((5, 5))
    with pytest.raises(ValueError, match="non-negative"):
        RelativeActionTransform((-1,))
    with pytest.raises(ValueError, match=r"state \(5,\)"):
        RelativeActionTransform((5,)).to_relative(np.zeros((20, 6)), np.zeros(5))
    with pytest.raises(TypeError, match="both be numpy or both be torch"):
        RelativeActionTransform().to_relative(np.zeros((20, 6)), torch.zeros(6))
    assert RelativeActionTransform((5, 0)).absolute_dims == (0, 5)


# ---- ActionNormalizer --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["zscore", "percentile"])
def test_normalize_round_trip(mode):
    stats = _stats()
    normalizer = ActionNormalizer(stats, mode=mode)
    rng = np.random.default_rng(4)
    chunk = rng.normal(scale=3.0, size=(5, 20, 6))  # far outside the percentiles: never clipped
    normalized = normalizer.normalize_actions(chunk)
    np.testing.assert_allclose(normalizer.unnormalize_actions(normalized), chunk, atol=1e-12)
    state = rng.normal(size=(5, 6))
    restored = normalizer.unnormalize_state(normalizer.normalize_state(state))
    np.testing.assert_allclose(restored, state, atol=1e-12)
    as_torch = normalizer.normalize_actions(torch.from_numpy(chunk))
    np.testing.assert_allclose(as_torch.numpy(), normalized, atol=1e-12)
    back = normalizer.unnormalize_actions(as_torch)
    np.testing.assert_allclose(back.numpy(), chunk, atol=1e-12)
    float32 = normalizer.normalize_actions(torch.from_numpy(chunk).float())
    assert float32.dtype == torch.float32


def test_normalize_values():
    stats = _stats()
    zscore = ActionNormalizer(stats, mode="zscore")
    expected = (np.ones(6) - stats.rel_mean_action) / stats.rel_std_action
    np.testing.assert_allclose(zscore.normalize_actions(np.ones(6)), expected)
    percentile = ActionNormalizer(stats, mode="percentile")
    np.testing.assert_allclose(percentile.normalize_actions(stats.rel_min_action), -np.ones(6))
    np.testing.assert_allclose(percentile.normalize_actions(stats.rel_max_action), np.ones(6))
    expected_state = (np.zeros(6) - stats.mean_state) / stats.std_state
    np.testing.assert_allclose(percentile.normalize_state(np.zeros(6)), expected_state)


def test_normalizer_validates_input():
    with pytest.raises(ValueError, match="'minmax'"):
        ActionNormalizer(_stats(), mode="minmax")
    with pytest.raises(ValueError, match=r"6 features in its last axis, got shape \(20, 7\)"):
        ActionNormalizer(_stats()).normalize_actions(np.zeros((20, 7)))


# ---- ActionStatistics --------------------------------------------------------------------------
def test_statistics_json_round_trip(tmp_path):
    stats = _stats()
    stats.save_json(tmp_path / "stats.json")
    loaded = ActionStatistics.load_json(tmp_path / "stats.json")
    for key, value in stats.to_dict().items():
        np.testing.assert_array_equal(getattr(loaded, key), value)
    assert loaded.action_dim == 6 and loaded.state_dim == 6


def test_statistics_load_reference_and_lerobot_json(tmp_path):
    reference = {**_stats().to_dict(), "task_data": {"pick": {"data_path": ["a.hdf5"]}}}
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    loaded = ActionStatistics.load_json(tmp_path / "reference.json")
    np.testing.assert_array_equal(loaded.rel_std_action, reference["rel_std_action"])
    lerobot = {"action": {"mean": [0.0] * 6}, "rynnvla": _stats().to_dict()}
    (tmp_path / "stats.json").write_text(json.dumps(lerobot))
    assert ActionStatistics.load_json(tmp_path / "stats.json").action_dim == 6


def test_statistics_errors_name_the_problem(tmp_path):
    data = _stats().to_dict()
    del data["rel_std_action"]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"missing key.*rel_std_action"):
        ActionStatistics.load_json(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ActionStatistics.load_json(tmp_path / "broken.json")
    good = _stats().to_dict()
    with pytest.raises(ValueError, match="same shape"):
        ActionStatistics.from_dict({**good, "rel_min_action": [0.0] * 5})
    with pytest.raises(ValueError, match="'mean_state' has non-finite"):
        ActionStatistics.from_dict({**good, "mean_state": [float("nan")] * 6})
    with pytest.raises(ValueError, match="'std_state' has negative"):
        ActionStatistics.from_dict({**good, "std_state": [-1.0] * 6})
    with pytest.raises(ValueError, match="rel_max_action must be >= rel_min_action"):
        ActionStatistics.from_dict({**good, "rel_max_action": [-5.0] * 6})


def test_statistics_floor_zero_std_and_are_read_only():
    data = _stats().to_dict()
    data["rel_std_action"] = [0.0, 1e-9, 1.0, 1.0, 1.0, 1.0]
    stats = ActionStatistics.from_dict(data)
    np.testing.assert_array_equal(stats.rel_std_action[:2], [MIN_SCALE, MIN_SCALE])
    with pytest.raises(ValueError, match="read-only"):
        stats.rel_std_action[0] = 3.0


# ---- chunks and compute_statistics --------------------------------------------------------------
def _brute_force_chunks(states, actions, chunk_length, absolute_dims):
    """Every frame starts a chunk; past the end the last action repeats."""
    rows = []
    last = len(actions) - 1
    for start in range(len(actions)):
        for step in range(chunk_length):
            current = actions[min(start + step, last)]
            previous = states[start] if step == 0 else actions[min(start + step - 1, last)]
            row = current - previous
            row[list(absolute_dims)] = current[list(absolute_dims)]
            rows.append(row)
    return np.array(rows)


def _episodes(lengths, dim=6, seed=5):
    rng = np.random.default_rng(seed)
    episodes = []
    for length in lengths:
        actions = np.cumsum(rng.normal(scale=0.05, size=(length, dim)), axis=0)
        states = actions + rng.normal(scale=0.01, size=(length, dim))
        episodes.append((states, actions))
    return episodes


def test_build_relative_chunks_pads_by_repeating_the_last_action():
    states, actions = _episodes([4])[0]
    transform = RelativeActionTransform((5,))
    chunks, valid = build_relative_chunks(states, actions, 3, transform)
    assert chunks.shape == (4, 3, 6) and valid.shape == (4, 3)
    np.testing.assert_array_equal(valid[3], [True, False, False])
    np.testing.assert_array_equal(chunks[3, 1:, :5], 0.0)  # the arm holds still
    np.testing.assert_array_equal(chunks[3, 1:, 5], actions[3, 5])  # gripper stays absolute
    chunk, _ = build_relative_chunks(states, actions, 3, transform, starts=[1])
    np.testing.assert_array_equal(chunk[0], transform.to_relative(actions[1:4], states[1]))


@pytest.mark.parametrize("absolute_dims", [(), (5,), (0, 5)])
def test_compute_statistics_matches_brute_force(absolute_dims):
    episodes = _episodes([7, 25, 3, 40])
    stats = compute_statistics(episodes, chunk_length=5, absolute_dims=absolute_dims)
    rows = np.concatenate([_brute_force_chunks(s, a, 5, absolute_dims) for s, a in episodes])
    states = np.concatenate([s for s, _ in episodes])
    np.testing.assert_allclose(stats.rel_mean_action, rows.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(stats.rel_std_action, rows.std(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats.rel_min_action, np.percentile(rows, 1, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.rel_max_action, np.percentile(rows, 99, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.mean_state, states.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std_state, states.std(axis=0), rtol=1e-10)


def test_compute_statistics_bounds_memory_with_a_reservoir():
    episodes = _episodes([500, 700, 300], seed=6)
    exact = compute_statistics(episodes, chunk_length=10, absolute_dims=(5,))
    sampled = compute_statistics(
        episodes, chunk_length=10, absolute_dims=(5,), percentile_sample_size=4000
    )
    np.testing.assert_allclose(sampled.rel_mean_action, exact.rel_mean_action, rtol=1e-10)
    np.testing.assert_allclose(sampled.rel_std_action, exact.rel_std_action, rtol=1e-10)
    spread = exact.rel_max_action - exact.rel_min_action
    assert np.all(np.abs(sampled.rel_min_action - exact.rel_min_action) < 0.1 * spread)
    assert np.all(np.abs(sampled.rel_max_action - exact.rel_max_action) < 0.1 * spread)


def test_reservoir_keeps_a_bounded_uniform_sample():
    reservoir = _RowReservoir(capacity=500, seed=0)
    total = 50_000
    for first in range(0, total, 3_000):  # batches that straddle the fill-up point too
        reservoir.update(np.arange(first, min(first + 3_000, total), dtype=np.float64)[:, None])
    sample = reservoir.values()[:, 0]
    assert sample.shape == (500,) and len(np.unique(sample)) == 500
    # Uniform over 0..49999: mean 25000, std of the sample mean ~ 14434 / sqrt(500) = 645.
    assert abs(sample.mean() - total / 2) < 3_000
    assert sample.min() < 2_000 and sample.max() > total - 2_000
    small = _RowReservoir(capacity=500, seed=0)
    small.update(np.arange(300, dtype=np.float64)[:, None])
    np.testing.assert_array_equal(small.values()[:, 0], np.arange(300))  # exact below capacity


def test_compute_statistics_rejects_bad_episodes():
    with pytest.raises(ValueError, match="no episodes"):
        compute_statistics([], chunk_length=5, absolute_dims=())
    good, bad = _episodes([5])[0], (np.zeros((5, 6)), np.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"episode 1: .*states \(5, 6\) and actions \(4, 6\)"):
        compute_statistics([good, bad], chunk_length=5, absolute_dims=())
    with pytest.raises(ValueError, match="episode 0: actions contain non-finite"):
        compute_statistics([(np.zeros((3, 6)), np.full((3, 6), np.nan))], 5, ())
    with pytest.raises(ValueError, match="out of range for action_dim 6"):
        compute_statistics([good], chunk_length=5, absolute_dims=(6,))


def test_the_statistics_need_no_torch():
    """The converter computes statistics with numpy only: importing torch (~1 s, ~125 MB) for
    them would be ~10 % of a conversion."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from rynnvla_policy.core.actions import compute_statistics\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
