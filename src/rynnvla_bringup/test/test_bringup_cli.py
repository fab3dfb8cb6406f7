"""`rynnvla-run` and `rynnvla-demo` as a user calls them."""

from __future__ import annotations

import json

import pytest

from rynnvla_bringup import composed, demo

pytestmark = pytest.mark.ros


def test_run_refuses_a_missing_checkpoint(tmp_path, capsys):
    assert composed.main(["--checkpoint", str(tmp_path / "none")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_run_refuses_an_unknown_profile(tiny_checkpoint, capsys):
    assert composed.main(["--checkpoint", str(tiny_checkpoint), "--robot", "so1000"]) == 2
    assert "so1000" in capsys.readouterr().err


def test_run_starts_both_nodes_and_stops_cleanly(tiny_checkpoint, capsys):
    args = ["--checkpoint", str(tiny_checkpoint), "--duration", "2", "-p", "warmup_runs:=1"]
    args += ["--task", "pen_to_holder", "--sim-param", "camera_rate_hz:=15"]
    assert composed.main(args) == 0
    assert "sim + policy running" in capsys.readouterr().out


def test_cli_overrides_reach_the_layers(tiny_checkpoint):
    args = composed.build_parser().parse_args(
        ["--checkpoint", str(tiny_checkpoint), "--task", "pen_to_holder", "-p", "device:=cpu"]
    )
    config = composed.config_from_args(args)
    assert config.policy_layers().merged()["instruction"] == "put the pen in the pen holder"
    assert config.sim_layers().merged()["task_id"] == "pen_to_holder"
    assert config.policy_layers().merged()["checkpoint_path"] == str(tiny_checkpoint.resolve())


def test_demo_without_a_checkpoint_says_how_to_get_one(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(demo, "shipped_checkpoint_candidates", lambda: [tmp_path / "sim_policy"])
    assert demo.main([]) == 2
    err = capsys.readouterr().err
    assert "make train-sim" in err and "--checkpoint" in err


def test_demo_runs_episodes_and_reports(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["--checkpoint", str(tiny_checkpoint), "--episodes", "block_to_plate=1"]
    assert demo.main([*args, "--timeout", "3", "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary["success"]) == {"block_to_plate"}
    assert summary["latency_p50_ms"] > 0 and summary["latency_p99_ms"] >= summary["latency_p50_ms"]
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["videos"] and all(v.endswith(".mp4") for v in summary["videos"])
    assert any(line.startswith("rollout video: ") for line in lines)
    assert any(line.startswith("latency plot: ") for line in lines)
