"""Builders from the node's numpy data to its outgoing messages (no spinning, no node)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rynnvla_msgs.msg import ActionChunk, PolicyStatus
from rynnvla_policy.conversions import ns_to_stamp
from rynnvla_policy.node.chunks import TrajectoryData
from rynnvla_policy.node.controller import ControlState, Counters


def joint_trajectory(data: TrajectoryData, joint_names: Sequence[str]) -> JointTrajectory:
    """trajectory_msgs/JointTrajectory with positions and velocities on every point."""
    msg = JointTrajectory()
    msg.header.stamp = ns_to_stamp(data.stamp_ns, Time)
    msg.joint_names = list(joint_names)
    points = []
    for t_ns, pos, vel in zip(
        data.time_from_start_ns, data.positions, data.velocities, strict=True
    ):
        point = JointTrajectoryPoint()
        point.time_from_start = ns_to_stamp(int(t_ns), Duration)
        point.positions = pos.tolist()
        point.velocities = vel.tolist()
        points.append(point)
    msg.points = points
    return msg


@dataclass(frozen=True)
class ChunkRecord:
    """One inference result, as published on ~/action_chunk."""

    positions: np.ndarray  # (T, D) raw model output, absolute targets
    latent: np.ndarray  # (L,)
    obs_stamp_ns: int
    step_ns: int
    instruction: str
    inference_s: float
    end_to_end_s: float
    sequence: int


def action_chunk(
    record: ChunkRecord, joint_names: Sequence[str], frame_id: str = ""
) -> ActionChunk:
    msg = ActionChunk()
    msg.header = Header(stamp=ns_to_stamp(record.obs_stamp_ns, Time), frame_id=frame_id)
    msg.joint_names = list(joint_names)
    msg.step_duration = ns_to_stamp(record.step_ns, Duration)
    msg.horizon = int(record.positions.shape[0])
    msg.positions = np.ascontiguousarray(record.positions, dtype=np.float64).reshape(-1).tolist()
    msg.instruction = record.instruction
    msg.latent = np.asarray(record.latent, dtype=np.float32).reshape(-1).tolist()
    msg.inference_latency = float(record.inference_s)
    msg.end_to_end_latency = float(record.end_to_end_s)
    msg.sequence = int(record.sequence)
    return msg


@dataclass(frozen=True)
class StatusReport:
    """Everything ~/status and /diagnostics say, gathered by the node."""

    stamp_ns: int
    lifecycle_state: str
    control_state: ControlState
    output_enabled: bool
    active_instruction: str
    latency_last_ms: float
    latency_mean_ms: float
    latency_p99_ms: float
    end_to_end_p50_ms: float
    end_to_end_p99_ms: float
    overhead_p50_ms: float  # node time per chunk outside the model (conversion + publishing)
    overhead_p99_ms: float
    achieved_rate_hz: float
    counters: Counters
    stale_streams: tuple[str, ...]
    stream_ages_ms: dict[str, float]  # stream -> age of its newest sample (inf: none yet)
    last_error: str


def policy_status(report: StatusReport) -> PolicyStatus:
    msg = PolicyStatus()
    msg.header.stamp = ns_to_stamp(report.stamp_ns, Time)
    msg.lifecycle_state = report.lifecycle_state
    msg.control_state = int(report.control_state)
    msg.control_state_label = report.control_state.label
    msg.output_enabled = report.output_enabled
    msg.active_instruction = report.active_instruction
    msg.latency_last_ms = report.latency_last_ms
    msg.latency_mean_ms = report.latency_mean_ms
    msg.latency_p99_ms = report.latency_p99_ms
    msg.end_to_end_p50_ms = report.end_to_end_p50_ms
    msg.end_to_end_p99_ms = report.end_to_end_p99_ms
    msg.achieved_rate_hz = report.achieved_rate_hz
    c = report.counters
    msg.chunks_published = c.chunks_published
    msg.dropped_inputs = c.dropped_inputs
    msg.stale_inputs = c.stale_inputs
    msg.joint_limit_clips = c.joint_limit_clips
    msg.velocity_clips = c.velocity_clips
    msg.rejected_chunks = c.rejected_chunks
    msg.stale_streams = list(report.stale_streams)
    msg.last_error = report.last_error
    return msg


_LEVELS = {
    ControlState.IDLE: DiagnosticStatus.OK,
    ControlState.RUNNING: DiagnosticStatus.OK,
    ControlState.HOLDING: DiagnosticStatus.WARN,
    ControlState.STALE: DiagnosticStatus.WARN,
    ControlState.ERROR: DiagnosticStatus.ERROR,
}


def diagnostics(report: StatusReport, node_name: str) -> DiagnosticArray:
    """One status for the control loop and one per input stream (age vs max_age)."""
    array = DiagnosticArray()
    array.header.stamp = ns_to_stamp(report.stamp_ns, Time)
    control = DiagnosticStatus()
    control.name = f"{node_name}: control"
    control.hardware_id = node_name
    control.level = _LEVELS[report.control_state]
    control.message = report.control_state.label + (
        f": {report.last_error}" if report.last_error else ""
    )
    c = report.counters
    values = {
        "lifecycle_state": report.lifecycle_state,
        "output_enabled": str(report.output_enabled).lower(),
        "active_instruction": report.active_instruction,
        "latency_mean_ms": f"{report.latency_mean_ms:.2f}",
        "latency_p99_ms": f"{report.latency_p99_ms:.2f}",
        "end_to_end_p50_ms": f"{report.end_to_end_p50_ms:.2f}",
        "end_to_end_p99_ms": f"{report.end_to_end_p99_ms:.2f}",
        "overhead_p50_ms": f"{report.overhead_p50_ms:.3f}",
        "overhead_p99_ms": f"{report.overhead_p99_ms:.3f}",
        "achieved_rate_hz": f"{report.achieved_rate_hz:.2f}",
        "chunks_published": str(c.chunks_published),
        "dropped_inputs": str(c.dropped_inputs),
        "stale_inputs": str(c.stale_inputs),
        "joint_limit_clips": str(c.joint_limit_clips),
        "velocity_clips": str(c.velocity_clips),
        "rejected_chunks": str(c.rejected_chunks),
    }
    control.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    statuses = [control]
    for stream, age_ms in sorted(report.stream_ages_ms.items()):
        status = DiagnosticStatus()
        status.name = f"{node_name}: input {stream}"
        status.hardware_id = node_name
        stale = stream in report.stale_streams
        status.level = DiagnosticStatus.WARN if stale else DiagnosticStatus.OK
        status.message = "stale" if stale else "fresh"
        age = "none received" if not np.isfinite(age_ms) else f"{age_ms:.1f}"
        status.values = [KeyValue(key="age_ms", value=age)]
        statuses.append(status)
    array.status = statuses
    return array
