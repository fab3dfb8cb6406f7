"""Loading the checkpoint and the warm-up latency report of configure (no ROS)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rynnvla_policy.node.contract import ControlTiming
from rynnvla_policy.node.params import PolicyNodeParams
from rynnvla_policy.node.safety import SafetyLimits


def load_runner(path: str, device: str, cpu_threads: int = 0):
    """`PolicyRunner.from_pretrained(path, device)`, imported here to keep torch out of imports."""
    import torch

    from rynnvla_policy.core import PolicyRunner

    if cpu_threads:
        torch.set_num_threads(cpu_threads)
    return PolicyRunner.from_pretrained(path, device=device)


@dataclass(frozen=True)
class WarmupReport:
    runs: int
    latency_ms: np.ndarray  # (runs,) wall time per inference
    stage_ms: dict[str, float]  # mean of each timings_ms entry
    timing: ControlTiming

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latency_ms, 50)) if self.runs else 0.0

    @property
    def worst_ms(self) -> float:
        return float(self.latency_ms.max()) if self.runs else 0.0

    @property
    def margin_ms(self) -> float:
        """Time the next chunk arrives before the current one runs out (worst warm-up run)."""
        t = self.timing
        return (t.chunk_span_s - t.inference_period_s) * 1e3 - self.worst_ms

    def describe(self) -> str:
        t = self.timing
        schedule = (
            f"chunk {t.chunk_length} steps x {t.step_s * 1e3:.1f} ms = {t.chunk_span_s * 1e3:.0f} ms, "
            f"new chunk every {t.inference_period_s * 1e3:.0f} ms "
            f"(execution horizon {t.execution_horizon} steps)"
        )
        if not self.runs:
            return f"warm-up skipped (warmup_runs=0); {schedule}"
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        return (
            f"warm-up: {self.runs} inferences, latency p50 {self.p50_ms:.1f} ms, "
            f"mean {self.latency_ms.mean():.1f} ms, max {self.worst_ms:.1f} ms ({stages} ms); "
            f"{schedule}; margin before a chunk runs out {self.margin_ms:.0f} ms"
        )

    @property
    def warning(self) -> str:
        if self.runs and self.margin_ms < 0:
            return (
                f"inference ({self.worst_ms:.0f} ms worst) is too slow for the schedule: the "
                "current chunk runs out before the next arrives; lower execution_horizon or use a "
                "faster device"
            )
        return ""


def warm_up(
    runner,
    params: PolicyNodeParams,
    joint_names: tuple[str, ...],
    limits: SafetyLimits,
    timing: ControlTiming,
) -> WarmupReport:
    """Run `params.warmup_runs` inferences on a synthetic observation, then reset the runner."""
    from rynnvla_policy.core import Observation

    height, width = params.warmup_image_shape
    rng = np.random.default_rng(0)
    images = {
        name: rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        for name in params.camera_names
    }
    state = (limits.lower + limits.upper) / 2.0  # (D,) mid-range: a pose the arm can hold
    observation = Observation(
        images=images, state=state, instruction=params.instruction or "warm up"
    )
    latencies, stages = [], {}
    for _ in range(params.warmup_runs):
        start = time.perf_counter()
        result = runner.infer(observation)
        latencies.append((time.perf_counter() - start) * 1e3)
        for key, value in dict(getattr(result, "timings_ms", {}) or {}).items():
            stages.setdefault(key, []).append(float(value))
        if result.positions.shape != (timing.chunk_length, len(joint_names)):
            raise RuntimeError(
                f"the checkpoint returned a chunk of shape {result.positions.shape}, its contract "
                f"says ({timing.chunk_length}, {len(joint_names)})"
            )
    runner.reset()
    return WarmupReport(
        runs=params.warmup_runs,
        latency_ms=np.array(latencies),
        stage_ms={k: float(np.mean(v)) for k, v in stages.items()},
        timing=timing,
    )
