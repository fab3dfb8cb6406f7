"""Record one scripted-expert episode into a rosbag2, as the live system would have recorded it.

In-process and faster than real time (no DDS), but with the live system's topics, types and
timing: the expert's targets go out at 30 Hz as one-point ``JointTrajectory`` messages
(``time_from_start`` = one control period, stamp = command time) and are executed by the same
``TrajectoryFollower`` the sim node uses; joint states and both cameras are sampled on the sim
clock (header stamp = capture time). Each message is logged at its receive time: the stamp plus
a seeded latency with jitter (cameras: tens of ms; joints and commands: about a millisecond),
and a few camera frames are dropped, as over a real network.

Sim clock: a deterministic synthetic epoch (``episode_epoch_ns``) so that re-runs produce the
same bags; episodes never overlap in time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rynnvla_policy.conversions import rgb_to_compressed_image, rgb_to_image
from rynnvla_sim.bags import (
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    EpisodeBagWriter,
    TopicSpec,
    typestore,
)
from rynnvla_sim.expert import ScriptedExpert
from rynnvla_sim.lead_in import LeadInSpec, PolicyLeadIn
from rynnvla_sim.messages import joint_state, joint_trajectory
from rynnvla_sim.stepper import ControlledArm, PeriodicSchedule, period_ns
from rynnvla_sim.tasks import TASKS
from rynnvla_sim.trajectory import NS_PER_S, FollowerConfig

EPOCH_S = 1_750_000_000  # 2025-06-15: synthetic but plausible wall-clock stamps
JOINT_STATES_TOPIC = "/joint_states"
INSTRUCTION_TOPIC = "/instruction"
IMAGE_FORMATS = ("raw", "jpeg")


@dataclass(frozen=True)
class RecordSpec:
    """How episodes are recorded (shared by every episode of a collection)."""

    image_format: str = "raw"  # raw: sensor_msgs/Image rgb8; jpeg: CompressedImage
    image_width: int = 128
    image_height: int = 96
    cameras: tuple[str, ...] = ("front", "wrist")
    camera_rate_hz: float = 30.0
    joint_state_rate_hz: float = 200.0
    control_rate_hz: float = 500.0  # the follower's update rate (a divisor of the 2 ms physics)
    expert_rate_hz: float = 30.0  # command rate of the expert (the policy's control rate)
    controller_name: str = "arm_controller"
    distractors: bool = False
    max_episode_s: float = 20.0
    settle_s: float = 1.5  # after the expert is done, wait this long for success
    camera_drop_probability: float = 0.01
    jpeg_quality: int = 90
    lead_in: LeadInSpec | None = None  # a policy drives first; only the expert part is recorded

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(
                f"RecordSpec.image_format must be one of {list(IMAGE_FORMATS)}, "
                f"got {self.image_format!r}"
            )
        for name in ("camera_rate_hz", "joint_state_rate_hz", "expert_rate_hz"):
            value = getattr(self, name)
            if not 0 < value <= self.control_rate_hz:
                raise ValueError(
                    f"RecordSpec.{name} must be in (0, control_rate_hz={self.control_rate_hz}], "
                    f"got {value!r}"
                )
        if not 0 <= self.camera_drop_probability < 0.5:
            raise ValueError(
                "RecordSpec.camera_drop_probability must be in [0, 0.5), got "
                f"{self.camera_drop_probability!r}"
            )
        if self.max_episode_s <= 0:
            raise ValueError(f"RecordSpec.max_episode_s must be > 0, got {self.max_episode_s!r}")

    @property
    def trajectory_topic(self) -> str:
        return f"/{self.controller_name}/joint_trajectory"

    def camera_topic(self, camera: str) -> str:
        suffix = "/compressed" if self.image_format == "jpeg" else ""
        return f"/camera/{camera}/image_raw{suffix}"

    def topics(self) -> list[TopicSpec]:
        image_type = (
            "sensor_msgs/msg/CompressedImage"
            if self.image_format == "jpeg"
            else "sensor_msgs/msg/Image"
        )
        return [
            TopicSpec(INSTRUCTION_TOPIC, "std_msgs/msg/String", LATCHED_QOS),
            TopicSpec(JOINT_STATES_TOPIC, "sensor_msgs/msg/JointState", SENSOR_QOS),
            TopicSpec(self.trajectory_topic, "trajectory_msgs/msg/JointTrajectory", RELIABLE_QOS),
            *(TopicSpec(self.camera_topic(c), image_type, SENSOR_QOS) for c in self.cameras),
        ]


@dataclass
class EpisodeResult:
    task_id: str
    seed: int
    instruction: str
    success: bool
    time_to_success_s: float
    duration_s: float  # simulated seconds recorded
    wall_s: float
    bag: str
    message_counts: dict[str, int] = field(default_factory=dict)
    dropped_frames: dict[str, int] = field(default_factory=dict)
    expert_done: bool = False
    ik_failures: int = 0
    lead_in: dict | None = None  # LeadInResult.to_dict() when a policy drove first


def episode_epoch_ns(task_id: str, seed: int) -> int:
    """Start of an episode on the synthetic clock: distinct, non-overlapping per (task, seed)."""
    task_index = sorted(TASKS).index(task_id)
    return (EPOCH_S + 100 * (seed + 1_000_000 * task_index)) * NS_PER_S


class LatencyModel:
    """Seeded receive delays (ns) per stream; receive times stay ordered per topic."""

    MS = 1_000_000

    def __init__(self, rng: np.random.Generator, cameras: tuple[str, ...]):
        self._rng = rng
        # a camera pipeline (exposure, USB transfer, driver) has its own typical delay
        self._camera_base_ms = {c: rng.uniform(15.0, 35.0) for c in cameras}
        self._last: dict[str, int] = {}

    def _ordered(self, topic: str, t_ns: int) -> int:
        t_ns = max(t_ns, self._last.get(topic, 0) + 1_000)  # in order, >= 1 us apart
        self._last[topic] = t_ns
        return t_ns

    def joint_state(self, topic: str, stamp_ns: int) -> int:
        delay = 0.4 + self._rng.exponential(0.4)
        return self._ordered(topic, stamp_ns + int(delay * self.MS))

    def command(self, topic: str, stamp_ns: int) -> int:
        delay = 0.2 + self._rng.exponential(0.2)
        return self._ordered(topic, stamp_ns + int(delay * self.MS))

    def camera(self, camera: str, topic: str, stamp_ns: int) -> int:
        delay = self._camera_base_ms[camera] + abs(self._rng.normal(0.0, 3.0))
        if self._rng.random() < 0.02:  # an occasional hiccup (USB / scheduler)
            delay += self._rng.uniform(15.0, 40.0)
        return self._ordered(topic, stamp_ns + int(delay * self.MS))


class _MessageTypes:
    def __init__(self, types):
        self.String = types["std_msgs/msg/String"]
        self.JointState = types["sensor_msgs/msg/JointState"]
        self.Image = types["sensor_msgs/msg/Image"]
        self.CompressedImage = types["sensor_msgs/msg/CompressedImage"]
        self.JointTrajectory = types["trajectory_msgs/msg/JointTrajectory"]
        self.JointTrajectoryPoint = types["trajectory_msgs/msg/JointTrajectoryPoint"]


class EpisodeRecorder:
    """Runs the expert on one env and writes episodes; reuse it for many episodes."""

    def __init__(self, env, spec: RecordSpec, storage: str):
        self.env = env
        self.spec = spec
        self.storage = storage
        self.follower_config = FollowerConfig(tuple(env.joint_names))
        self._lead_in: PolicyLeadIn | None = None  # loaded on the first episode that needs it

    def record(self, task_id: str, seed: int, bag_path: Path | None) -> EpisodeResult:
        """Run one episode into ``bag_path``; None = dry run (no bag, no rendering), which
        measures the expert exactly as recorded, only faster."""
        spec = self.spec
        wall_start = time.perf_counter()
        arm = ControlledArm(
            self.env, self.follower_config, spec.control_rate_hz, episode_epoch_ns(task_id, seed)
        )
        info = arm.reset_episode(task_id, seed, distractors=spec.distractors)
        lead_in = self._run_lead_in(arm, info["instruction"], task_id, seed)
        expert = ScriptedExpert(self.env)  # plans from wherever the lead-in left arm and object
        rng = np.random.default_rng([seed, sorted(TASKS).index(task_id), 0xBA6])
        latency = LatencyModel(rng, spec.cameras)
        dropped = dict.fromkeys(spec.cameras, 0)
        if bag_path is None:
            self._run(arm, expert, _Writer(None, spec, latency, self.env.joint_names), rng, dropped)
            counts = {}
        else:
            custom = {"rynnvla.task_id": task_id, "rynnvla.seed": str(seed)}
            with EpisodeBagWriter(bag_path, self.storage, spec.topics(), custom_data=custom) as bag:
                writer = _Writer(bag, spec, latency, self.env.joint_names)
                writer.instruction(info["instruction"], arm.now_ns)
                self._run(arm, expert, writer, rng, dropped)
            counts = dict(bag.counts)  # after close: every queued message is written
        return EpisodeResult(
            task_id=task_id,
            seed=seed,
            instruction=info["instruction"],
            success=bool(self.env.success()),
            time_to_success_s=arm.time_to_success_s,
            duration_s=arm.elapsed_s - (lead_in["policy_s"] if lead_in else 0.0),
            wall_s=time.perf_counter() - wall_start,
            bag=str(bag_path or ""),
            message_counts=counts,
            dropped_frames=dropped,
            expert_done=expert.done,
            ik_failures=expert.ik_failures,
            lead_in=lead_in,
        )

    def _run_lead_in(self, arm, instruction: str, task_id: str, seed: int) -> dict | None:
        if self.spec.lead_in is None:
            return None
        if self._lead_in is None:
            types = _MessageTypes(typestore().types)
            self._lead_in = PolicyLeadIn(
                self.spec.lead_in, self.env, (types.JointTrajectory, types.JointTrajectoryPoint)
            )
        rng = np.random.default_rng([seed, sorted(TASKS).index(task_id), 0x1EAD])
        return self._lead_in.run(arm, instruction, task_id, rng).to_dict()

    def _run(self, arm: ControlledArm, expert, writer: _Writer, rng, dropped: dict) -> None:
        """Control ticks until success after the expert is done, a time-out, or max length.

        At each tick: sensors are sampled (state at this instant), then the expert commands,
        then physics advances one control period.
        """
        spec, env = self.spec, self.env
        t0 = arm.now_ns
        cameras = PeriodicSchedule(spec.camera_rate_hz, t0, int(rng.integers(period_ns(60.0))))
        states = PeriodicSchedule(spec.joint_state_rate_hz, t0)
        commands = PeriodicSchedule(spec.expert_rate_hz, t0)
        done_at = None
        while arm.elapsed_s < spec.max_episode_s:
            now = arm.now_ns
            if states.due(now):
                writer.joint_state(now, *arm.state())
            if cameras.due(now) and writer.recording:
                for camera in spec.cameras:
                    if rng.random() < spec.camera_drop_probability:
                        dropped[camera] += 1  # lost on the way: never received
                    else:
                        writer.image(camera, now, env.render(camera))
            if commands.due(now):
                if expert.done:
                    done_at = env.time if done_at is None else done_at
                    if env.success() or env.time - done_at > spec.settle_s:
                        break
                result = arm.submit(writer.command(now, expert.act(env)))
                if not result.accepted:
                    raise RuntimeError(f"the recorder's own command was rejected: {result}")
            arm.tick()


class _Writer:
    """Builds the messages of one episode and logs them at their receive times."""

    def __init__(self, bag: EpisodeBagWriter | None, spec: RecordSpec, latency, joint_names):
        self.bag, self.spec, self.latency = bag, spec, latency
        self.types = _MessageTypes(typestore().types)
        self.joint_names = tuple(joint_names)
        self.command_period_ns = period_ns(spec.expert_rate_hz)

    @property
    def recording(self) -> bool:
        return self.bag is not None

    def _write(self, topic: str, msg, log_time_ns: int) -> None:
        if self.bag is not None:
            self.bag.write(topic, msg, log_time_ns)

    def instruction(self, text: str, t_ns: int) -> None:
        self._write(INSTRUCTION_TOPIC, self.types.String(data=text), t_ns)

    def joint_state(self, stamp_ns: int, q: np.ndarray, qd: np.ndarray) -> None:
        if not self.recording:
            return
        msg = joint_state(self.types.JointState, self.joint_names, q, qd, stamp_ns=stamp_ns)
        log_ns = self.latency.joint_state(JOINT_STATES_TOPIC, stamp_ns)
        self._write(JOINT_STATES_TOPIC, msg, log_ns)

    def image(self, camera: str, stamp_ns: int, rgb: np.ndarray) -> None:
        frame_id = f"{camera}_camera_optical_frame"
        if self.spec.image_format == "jpeg":
            msg = rgb_to_compressed_image(
                rgb,
                self.types.CompressedImage,
                quality=self.spec.jpeg_quality,
                stamp_ns=stamp_ns,
                frame_id=frame_id,
            )
        else:
            msg = rgb_to_image(rgb, self.types.Image, stamp_ns=stamp_ns, frame_id=frame_id)
        topic = self.spec.camera_topic(camera)
        self._write(topic, msg, self.latency.camera(camera, topic, stamp_ns))

    def command(self, stamp_ns: int, target: np.ndarray):
        msg = joint_trajectory(
            self.types.JointTrajectory,
            self.types.JointTrajectoryPoint,
            self.joint_names,
            target[None],
            [self.command_period_ns],
            stamp_ns=stamp_ns,
        )
        topic = self.spec.trajectory_topic
        if self.recording:
            self._write(topic, msg, self.latency.command(topic, stamp_ns))
        return msg


def write_sidecar(result: EpisodeResult, spec: RecordSpec, storage: str, path: Path) -> None:
    """``episode.json`` next to the bag's metadata.yaml: what the bag holds and how it went."""
    payload = {
        "task_id": result.task_id,
        "instruction": result.instruction,
        "seed": result.seed,
        "success": result.success,
        "time_to_success_s": result.time_to_success_s,
        "duration_s": round(result.duration_s, 6),
        "expert_done": result.expert_done,
        "lead_in": result.lead_in,
        "message_counts": result.message_counts,
        "dropped_frames": result.dropped_frames,
        "storage": storage,
        "record_spec": asdict(spec),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
