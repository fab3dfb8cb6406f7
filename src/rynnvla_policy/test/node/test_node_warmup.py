"""Warm-up latency report of configure, with the real tiny model."""

from __future__ import annotations

import numpy as np

from rynnvla_policy.node.contract import ControlTiming, check_contract
from rynnvla_policy.node.params import PolicyNodeParams
from rynnvla_policy.node.safety import SafetyLimits
from rynnvla_policy.node.warmup import WarmupReport, load_runner, warm_up


def test_warm_up_reports_latency_and_schedule(node_checkpoint):
    runner = load_runner(str(node_checkpoint), "cpu", cpu_threads=0)
    params = PolicyNodeParams.from_mapping(
        {"checkpoint_path": str(node_checkpoint), "warmup_runs": 2, "warmup_image_shape": [48, 64]}
    )
    timing = check_contract(params, runner.contract)
    limits = SafetyLimits.from_lists(
        params.joint_names,
        params.joint_lower_limits,
        params.joint_upper_limits,
        params.joint_velocity_limits,
        params.max_first_target_distance,
    )
    report = warm_up(runner, params, params.joint_names, limits, timing)
    assert report.runs == 2 and report.latency_ms.shape == (2,)
    assert {"preprocess", "forward", "decode"} <= set(report.stage_ms)
    text = report.describe()
    assert "warm-up: 2 inferences" in text
    assert "chunk 20 steps x 33.3 ms = 667 ms, new chunk every 333 ms" in text


def test_too_slow_inference_is_warned_about():
    timing = ControlTiming(
        step_s=1 / 30, chunk_length=20, execution_horizon=10, inference_period_s=1 / 3
    )
    slow = WarmupReport(
        runs=3, latency_ms=np.array([300.0, 350.0, 400.0]), stage_ms={}, timing=timing
    )
    assert slow.margin_ms < 0
    assert "too slow for the schedule" in slow.warning
    fast = WarmupReport(runs=3, latency_ms=np.array([30.0, 40.0, 50.0]), stage_ms={}, timing=timing)
    assert fast.warning == "" and fast.margin_ms > 0
