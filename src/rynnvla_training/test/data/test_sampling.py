"""The sample stream depends on the step only: not on ranks, accumulation or resumes."""

from __future__ import annotations

import pytest

from rynnvla_training.data.sampling import StreamLayout, StreamSampler


def _keys(size, layout, rank=0, start=0, steps=5, seed=3):
    sampler = StreamSampler(
        size, layout, rank=rank, seed=seed, shuffle=True, start_step=start, max_steps=steps
    )
    return list(sampler)


def test_ranks_and_accumulation_split_the_same_global_batches():
    single = _keys(10, StreamLayout(micro_batch=4, grad_accum=1, world_size=1))
    ranks = [
        _keys(10, StreamLayout(micro_batch=1, grad_accum=2, world_size=2), rank=r) for r in (0, 1)
    ]
    for step in range(5):
        expected = {k.position for k in single[step * 4 : step * 4 + 4]}
        got = {k.position for r in ranks for k in r[step * 2 : step * 2 + 2]}
        assert got == expected
    merged = {k.position: k for r in ranks for k in r}
    assert all(merged[k.position] == k for k in single)


def test_resume_yields_the_suffix_of_the_uninterrupted_stream():
    layout = StreamLayout(micro_batch=3, grad_accum=2, world_size=1)
    full = _keys(7, layout, steps=6)
    assert _keys(7, layout, start=4, steps=6) == full[4 * 6 :]


def test_every_epoch_is_a_permutation_and_seeds_differ_per_draw():
    keys = _keys(8, StreamLayout(micro_batch=4, grad_accum=1, world_size=1), steps=4)
    epochs = [sorted(k.index for k in keys[i : i + 8]) for i in (0, 8)]
    assert epochs == [list(range(8))] * 2
    assert [k.index for k in keys[:8]] != [k.index for k in keys[8:]]
    assert len({k.seed for k in keys}) == len(keys)


def test_bad_arguments_are_named():
    layout = StreamLayout(micro_batch=1, grad_accum=1, world_size=2)
    with pytest.raises(ValueError, match="dataset_size=0"):
        StreamSampler(0, layout, rank=0, seed=0, shuffle=True, start_step=0, max_steps=1)
    with pytest.raises(ValueError, match="rank=2"):
        StreamSampler(4, layout, rank=2, seed=0, shuffle=True, start_step=0, max_steps=1)
