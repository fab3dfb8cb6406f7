"""One closed-loop episode through the real ROS interfaces of the sim and the policy node.

    1. /rynnvla_policy/enable_output false   the arm holds; inference goes on in dry run
    2. /sim/reset_episode {task, seed}        new layout, arm at its start pose
    3. /rynnvla_policy/set_instruction        the task's instruction, reset_history true
    4. wait for 2 chunks computed after (3)   a chunk in flight from the old episode never moves
                                              the arm, and the model history is cleared
    5. /rynnvla_policy/enable_output true     the policy drives the arm
    6. wait for /sim/episode_status           success, or `timeout_s` simulated seconds
    7. enable_output false                    hold until the next episode

Times are simulated seconds since the reset (the sim's clock), so they do not depend on how
busy the machine is; a wall-clock deadline only guards against a stalled system.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from rynnvla_training.evaluate.video import ChunkTrace

NS = 1_000_000_000
GATE_CHUNKS = 2
SERVICE_TIMEOUT_S = 10.0


@dataclass
class EpisodeResult:
    task_id: str
    seed: int
    instruction: str
    success: bool
    time_to_success_s: float  # -1 when not successful
    duration_s: float  # simulated seconds from reset to the end of the episode
    wall_s: float  # wall seconds from enabling output to the end
    chunks: int  # chunks computed during the episode
    inference_ms: list[float] = field(default_factory=list)  # model latency per chunk
    end_to_end_ms: list[float] = field(default_factory=list)  # obs stamp -> chunk published
    video: str = ""
    error: str = ""

    def summary(self) -> dict:
        """JSON-ready, without the per-chunk lists."""
        out = asdict(self)
        out.pop("inference_ms")
        out.pop("end_to_end_ms")
        out["inference_ms_p50"] = _p(self.inference_ms, 50)
        out["inference_ms_p99"] = _p(self.inference_ms, 99)
        return out


@dataclass
class Rollout:
    """What a video of the episode needs."""

    start_ns: int
    frames: list  # [(stamp_ns, rgb)]
    chunks: list[ChunkTrace]
    joint_names: tuple[str, ...] = ()  # column order of the chunks' positions


def _p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else 0.0


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * NS + int(stamp.nanosec)


def run_episode(
    client,
    task_id: str,
    seed: int,
    timeout_s: float,
    *,
    real_time_factor: float = 1.0,
    distractors: bool = False,
    record_topic: str | None = None,
    record_fps: float = 15.0,
    chunk_timeout_s: float = 30.0,
) -> tuple[EpisodeResult, Rollout | None]:
    """Run one episode with `client` (a SystemClient whose executor spins elsewhere)."""
    client.enable_output(False)
    client.wait_for(lambda: client.episode is not None, SERVICE_TIMEOUT_S, "/sim/episode_status")
    previous = client.episode.episode_index
    instruction = client.reset_episode(task_id, seed, distractors)
    client.wait_for(
        lambda: client.episode.episode_index > previous,
        SERVICE_TIMEOUT_S,
        f"/sim/episode_status of the new episode ({task_id} seed {seed})",
    )
    status = client.episode
    start_ns = _stamp_ns(status.header.stamp) - round(status.elapsed * NS)
    index = status.episode_index
    if record_topic:
        client.start_recording(record_topic, record_fps)
    client.set_instruction(instruction, reset_history=True)
    after = client.last_chunk.sequence if client.last_chunk is not None else 0
    wall_start = time.monotonic()
    error = ""
    done = lambda: (  # noqa: E731 - a predicate read by wait_for
        client.episode.episode_index == index
        and (client.episode.time_to_success >= 0 or client.episode.elapsed >= timeout_s)
    )
    try:
        client.wait_for(
            lambda: (
                client.last_chunk is not None and client.last_chunk.sequence >= after + GATE_CHUNKS
            ),
            chunk_timeout_s,
            f"{GATE_CHUNKS} policy chunks after set_instruction",
        )
        client.enable_output(True)
        wall_start = time.monotonic()
        client.wait_for(done, timeout_s / real_time_factor * 3 + 30.0, "episode end")
    except TimeoutError as exc:  # no chunks, or the sim stalled: report it, do not hang
        error = f"{exc} ({policy_state(client)})"
    wall_s = time.monotonic() - wall_start
    client.enable_output(False)
    status = client.episode
    frames = client.stop_recording() if record_topic else []
    # every chunk computed from this episode's observations (the gating ones included)
    chunks = [c for c in client.chunks_since(after) if _stamp_ns(c.header.stamp) >= start_ns]
    success = status.time_to_success >= 0
    result = EpisodeResult(
        task_id=task_id,
        seed=seed,
        instruction=instruction,
        success=success,
        time_to_success_s=float(status.time_to_success) if success else -1.0,
        duration_s=float(status.time_to_success if success else status.elapsed),
        wall_s=wall_s,
        chunks=len(chunks),
        inference_ms=[c.inference_latency * 1e3 for c in chunks],
        end_to_end_ms=[c.end_to_end_latency * 1e3 for c in chunks],
        error=error,
    )
    rollout = None
    if record_topic:
        traces = [_trace(c) for c in chunks]
        names = tuple(chunks[0].joint_names) if chunks else ()
        rollout = Rollout(start_ns, [(f.stamp_ns, f.rgb) for f in frames], traces, names)
    return result, rollout


def policy_state(client) -> str:
    """The policy node's state in a few words, for error messages."""
    status = client.policy_status
    if status is None:
        return "no status from /rynnvla_policy/status"
    text = f"policy {status.lifecycle_state}/{status.control_state_label}"
    if status.stale_streams:
        text += f", stale inputs {list(status.stale_streams)}"
    return text + (f", last error: {status.last_error}" if status.last_error else "")


def _trace(chunk) -> ChunkTrace:
    stamp = _stamp_ns(chunk.header.stamp)
    step_ns = int(chunk.step_duration.sec) * NS + int(chunk.step_duration.nanosec)
    positions = np.asarray(chunk.positions, dtype=np.float64).reshape(
        int(chunk.horizon), len(chunk.joint_names)
    )
    return ChunkTrace(stamp, stamp + round(chunk.end_to_end_latency * NS), step_ns, positions)
