"""Aggregation of episode results into the per-task table and the results JSON."""

from __future__ import annotations

import json

import pytest

from rynnvla_training.evaluate.episode import EpisodeResult
from rynnvla_training.evaluate.report import EvalReport, percentiles


def episode(task, seed, success, t, latencies=(100.0, 120.0)) -> EpisodeResult:
    return EpisodeResult(
        task_id=task,
        seed=seed,
        instruction="x",
        success=success,
        time_to_success_s=t if success else -1.0,
        duration_s=t,
        wall_s=t,
        chunks=len(latencies),
        inference_ms=list(latencies),
        end_to_end_ms=[v + 10 for v in latencies],
    )


@pytest.fixture
def report() -> EvalReport:
    return EvalReport(
        "ckpt",
        [
            episode("block_to_plate", 0, True, 8.0),
            episode("block_to_plate", 1, True, 10.0),
            episode("block_to_plate", 2, False, 30.0),
            episode("pen_to_holder", 0, False, 30.0, latencies=(300.0,)),
        ],
    )


def test_per_task_rates_and_times(report):
    tasks = report.tasks()
    assert report.success() == {
        "block_to_plate": pytest.approx(2 / 3, abs=1e-4),
        "pen_to_holder": 0.0,
    }
    assert tasks["block_to_plate"].mean_time_to_success_s == 9.0
    assert tasks["block_to_plate"].mean_episode_s == 16.0
    assert tasks["pen_to_holder"].mean_time_to_success_s == -1.0
    assert report.mean_episode_s() == 19.5


def test_latency_percentiles_pool_every_chunk(report):
    stats = report.inference_ms()
    assert stats["count"] == 7
    assert stats["max"] == 300.0
    assert stats["p50"] == 120.0
    assert percentiles([])["p99"] == 0.0


def test_table_summary_line_and_json(report, tmp_path):
    table = report.table()
    assert "block_to_plate" in table and "67%" in table and "pen_to_holder" in table
    line = report.summary_line(tmp_path / "results.json")
    assert set(line) >= {"success", "mean_episode_s", "latency_p50_ms", "latency_p99_ms"}
    path = report.write_json(tmp_path / "out" / "results.json")
    data = json.loads(path.read_text())
    assert data["tasks"]["block_to_plate"]["successes"] == 2
    assert len(data["episodes"]) == 4 and "inference_ms" not in data["episodes"][0]
    assert not list(path.parent.glob("*.tmp"))
