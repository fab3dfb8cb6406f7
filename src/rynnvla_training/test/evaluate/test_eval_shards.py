"""`rynnvla-eval --workers N`: seeds dealt over processes exactly once, each process its own
ROS domain and system, results merged as if one system had run them."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from rynnvla_training.evaluate.config import EvalConfig, EvalConfigError
from rynnvla_training.evaluate.episode import EpisodeResult
from rynnvla_training.evaluate.shards import (
    EPISODES_FILE,
    SHARD_DIR,
    merge,
    read_episodes,
    shard_configs,
    shard_domain,
)


def _config(tmp_path, **overrides) -> EvalConfig:
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir(exist_ok=True)
    fields = {
        "checkpoint": checkpoint,
        "episodes": {"block_to_plate": 5, "pen_to_holder": 2},
        "out_dir": tmp_path / "eval",
        "seed_start": 10,
        **overrides,
    }
    return EvalConfig(**fields)


def test_every_seed_runs_exactly_once_and_only_shard_zero_films(tmp_path):
    config = _config(tmp_path, policy_overrides={"warmup_runs": 1})
    shards = shard_configs(config, 3)
    for task in config.episodes:
        dealt = sorted(seed for shard in shards for seed in shard.seeds(task))
        assert dealt == config.seeds(task)
    assert shards[0].seeds("block_to_plate") == [10, 13]
    assert [s.videos_per_task for s in shards] == [1, 0, 0]
    assert sum(s.total_episodes for s in shards) == config.total_episodes == 7
    assert {str(s.out_dir.relative_to(config.out_dir)) for s in shards} == {
        f"{SHARD_DIR}/{k}" for k in range(3)
    }
    assert all(s.policy_overrides["warmup_runs"] == 1 for s in shards)
    assert all(s.policy_overrides["cpu_threads"] >= 1 for s in shards)
    pinned = shard_configs(_config(tmp_path, policy_overrides={"cpu_threads": 3}), 2)
    assert [s.policy_overrides["cpu_threads"] for s in pinned] == [3, 3]  # the caller's wins


def test_shard_domains_differ_and_stay_in_range():
    for base in (0, 7, 100):
        domains = [shard_domain(base, k) for k in range(4)]
        assert domains[0] == base
        assert len(set(domains)) == 4 and all(0 <= d <= 100 for d in domains)


@pytest.mark.parametrize(
    ("workers", "message"),
    [(1, "at least 2 processes"), (8, "more processes than the 7 episodes")],
)
def test_bad_worker_counts_are_refused(tmp_path, workers, message):
    with pytest.raises(EvalConfigError, match=message):
        shard_configs(_config(tmp_path), workers)


def test_bad_shard_fields_are_refused(tmp_path):
    with pytest.raises(EvalConfigError, match=r"shard_index=2: expected an integer in \[0, 2\)"):
        _config(tmp_path, shard_index=2, shard_count=2)
    with pytest.raises(EvalConfigError, match="shard_count=0"):
        _config(tmp_path, shard_count=0)


def _episode(task: str, seed: int, success: bool) -> EpisodeResult:
    return EpisodeResult(
        task, seed, "do it", success, 2.0 if success else -1.0, 3.0, 3.1, 4, [10.0, 12.0], [11.0]
    )


def test_merge_orders_by_task_then_seed_and_ignores_a_half_written_line(tmp_path):
    config = _config(tmp_path)
    shards = shard_configs(config, 2)
    written = {
        0: [_episode("pen_to_holder", 10, True), _episode("block_to_plate", 12, False)],
        1: [_episode("block_to_plate", 11, True)],
    }
    for index, episodes in written.items():
        shards[index].out_dir.mkdir(parents=True)
        lines = "".join(json.dumps(asdict(e)) + "\n" for e in episodes)
        if index == 1:
            lines += '{"task_id": "block_to_pl'  # killed mid-write
        (shards[index].out_dir / EPISODES_FILE).write_text(lines)
    assert len(read_episodes(shards[1].out_dir)) == 1
    report = merge(config, shards, settings={"workers": 2})
    assert [(e.task_id, e.seed) for e in report.episodes] == [
        ("block_to_plate", 11),
        ("block_to_plate", 12),
        ("pen_to_holder", 10),
    ]
    assert report.success() == {"block_to_plate": 0.5, "pen_to_holder": 1.0}
    assert report.inference_ms()["count"] == 6  # per-chunk latencies survive the merge


@pytest.mark.ros
def test_two_processes_evaluate_like_one(eval_checkpoint, tmp_path, capsys):
    pytest.importorskip("rclpy", reason="rclpy is not importable (run `make setup`)")
    from rynnvla_training.evaluate.cli import main

    out = tmp_path / "eval"
    args = ["--checkpoint", str(eval_checkpoint), "--episodes", "block_to_plate=3"]
    args += ["--timeout", "2", "--out", str(out), "--quiet", "--workers", "2"]
    args += ["-p", "warmup_runs:=1"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 3 and summary["latency_p50_ms"] > 0
    results = json.loads((out / "results.json").read_text())
    assert [e["seed"] for e in results["episodes"]] == [100000, 100001, 100002]
    assert all(e["chunks"] > 0 and e["error"] == "" for e in results["episodes"])
    assert results["settings"]["workers"] == 2
    assert len(results["videos"]) == 1 and "/shards/0/" in results["videos"][0]
    for k in range(2):  # each shard ran its own system: its own log and results
        assert (out / SHARD_DIR / str(k) / "results.json").is_file()


@pytest.mark.ros
def test_a_failing_shard_fails_the_evaluation_with_its_log(eval_checkpoint, tmp_path, capsys):
    pytest.importorskip("rclpy", reason="rclpy is not importable (run `make setup`)")
    from rynnvla_training.evaluate.cli import main

    out = tmp_path / "eval"
    args = ["--checkpoint", str(eval_checkpoint), "--episodes", "block_to_plate=2"]
    args += ["--out", str(out), "--quiet", "--workers", "2", "-p", "warmup_runs:=1"]
    args += ["-p", "execution_horizon:=0"]  # rejected by each policy node's parameter checks
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "shard 0 exited with 2" in err and "execution_horizon" in err
