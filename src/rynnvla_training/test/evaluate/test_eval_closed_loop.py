"""`rynnvla-eval` of a tiny random model through the real sim and policy nodes: it runs to
completion and reports per-task results, videos and a JSON line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rclpy", reason="rclpy is not importable (run `make setup`)")
pytestmark = pytest.mark.ros


def test_eval_of_a_tiny_model_reports_every_task(eval_checkpoint, tmp_path, capsys):
    import av

    from rynnvla_training.evaluate.cli import main

    out = tmp_path / "eval"
    args = ["--checkpoint", str(eval_checkpoint), "--episodes", "1", "--timeout", "3"]
    args += ["--out", str(out), "--quiet", "--videos-per-task", "1", "-p", "warmup_runs:=1"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    tasks = {"block_to_plate", "strawberry_to_bowl", "pen_to_holder"}
    assert set(summary["success"]) == tasks
    assert all(0.0 <= rate <= 1.0 for rate in summary["success"].values())
    assert summary["latency_p50_ms"] > 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["tasks"]) == tasks
    for task in tasks:
        assert results["tasks"][task]["episodes"] == 1
        assert results["tasks"][task]["errors"] == 0
    assert all(e["chunks"] > 0 and e["error"] == "" for e in results["episodes"])
    assert len(results["videos"]) == 3
    for video in results["videos"]:
        with av.open(video) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert sum(1 for _ in container.decode(video=0)) > 10
    assert any(line.startswith("block_to_plate") for line in lines)  # the table


def test_eval_refuses_an_unknown_task(eval_checkpoint, tmp_path, capsys):
    from rynnvla_training.evaluate.cli import main

    args = ["--checkpoint", str(eval_checkpoint), "--episodes", "fly=1", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "unknown task ids ['fly']" in capsys.readouterr().err


def test_eval_stops_when_the_policy_never_gets_inputs(eval_checkpoint, tmp_path):
    from rynnvla_training.evaluate.config import EvalConfig
    from rynnvla_training.evaluate.runner import EvalAbortedError, evaluate

    config = EvalConfig(
        checkpoint=eval_checkpoint,
        episodes={"block_to_plate": 5},
        out_dir=tmp_path,
        timeout_s=3.0,
        chunk_timeout_s=2.0,
        videos_per_task=0,
        progress=False,
        # cameras nobody publishes: the policy holds (stale inputs) and never infers
        policy_overrides={"camera_topics": ["/nowhere/front", "/nowhere/wrist"], "warmup_runs": 1},
    )
    with pytest.raises(EvalAbortedError, match="3 episodes in a row") as caught:
        evaluate(config, log=lambda text: None)
    assert "stale inputs" in str(caught.value)
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["episodes"]) == 3
    assert all("policy chunks after set_instruction" in e["error"] for e in results["episodes"])
