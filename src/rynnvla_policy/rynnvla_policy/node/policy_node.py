"""The RynnVLA policy as a ROS 2 lifecycle node (thin: the logic lives in the pure modules).

configure  read + validate parameters, load the checkpoint, check its feature contract against
           the parameters, warm up and log a latency report, create topics and services.
activate   start the inference worker and the input watchdog: chunks flow.
deactivate stop the worker, command a hold of the current position.
cleanup    release topics, services and the model.   shutdown: hold, then as cleanup.

Every callback catches its own errors (reported in ~/status and the log); none escapes.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from rynnvla_policy import conversions
from rynnvla_policy.node import messages
from rynnvla_policy.node.chunks import NS, OverlapMerger
from rynnvla_policy.node.contract import ControlTiming, check_contract
from rynnvla_policy.node.controller import ChunkController, ControlState
from rynnvla_policy.node.inputs import InputBuffers, Snapshot, StampError
from rynnvla_policy.node.params import ParamsError, PolicyNodeParams
from rynnvla_policy.node.safety import SafetyLimits
from rynnvla_policy.node.services import PolicyServices
from rynnvla_policy.node.stats import RateMeter, Window
from rynnvla_policy.node.warmup import load_runner, warm_up
from rynnvla_policy.node.worker import InferenceWorker

NODE_NAME = "rynnvla_policy"
STATE_STREAM = "joint_states"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class PolicyNode(LifecycleNode):
    """Lifecycle node `rynnvla_policy`.

    `runner_loader(path, device, cpu_threads)` returns the model (anything with `contract`,
    `infer(Observation)` and `reset()`); the default loads `PolicyRunner.from_pretrained`.
    """

    def __init__(self, node_name: str = NODE_NAME, runner_loader=None, **kwargs: Any):
        kwargs.setdefault("automatically_declare_parameters_from_overrides", True)
        super().__init__(node_name, **kwargs)
        self._declare_parameters()
        self._runner_loader = runner_loader or load_runner
        self._lifecycle = "unconfigured"
        self._config_error = ""
        self._reset_runtime()
        self._status_pub = self.create_publisher(messages.PolicyStatus, "~/status", RELIABLE)
        self._diag_pub = self.create_publisher(messages.DiagnosticArray, "/diagnostics", RELIABLE)
        rate = self._initial_status_rate()
        self._status_timer = self.create_timer(1.0 / rate, self._guard(self._publish_status))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._auto_timer = None
        if self.get_parameter("auto_activate").value is True:
            self._auto_timer = self.create_timer(0.0, self._guard(self._auto_activate))

    # ------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> None:
        dynamic = ParameterDescriptor(dynamic_typing=True)
        for name, default in PolicyNodeParams.defaults().items():
            if not self.has_parameter(name):
                self.declare_parameter(name, default, dynamic)

    def _read_params(self) -> PolicyNodeParams:
        values = {name: p.value for name, p in self.get_parameters_by_prefix("").items()}
        return PolicyNodeParams.from_mapping(values)

    def _initial_status_rate(self) -> float:
        value = self.get_parameter("status_rate_hz").value
        return float(value) if isinstance(value, int | float) and value >= 1 else 1.0

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        ours = [p.name for p in params if p.name in PolicyNodeParams.names()]
        if ours and self._lifecycle in ("inactive", "active"):
            return SetParametersResult(
                successful=False,
                reason=f"{', '.join(ours)}: parameters are read at configure; "
                "deactivate and clean up the node first",
            )
        return SetParametersResult(successful=True)

    def _reset_runtime(self) -> None:
        """Forget everything configure created."""
        self.params: PolicyNodeParams | None = None
        self.runner = None
        self.timing: ControlTiming | None = None
        self.joint_names: tuple[str, ...] = ()
        self.controller: ChunkController | None = None
        self.buffers: InputBuffers | None = None
        self.policy_services: PolicyServices | None = None
        self._worker: InferenceWorker | None = None
        self._watchdog = None
        self._entities: list = []
        self._trajectory_pub = None
        self._chunk_pub = None
        self._instruction_pub = None
        self.instruction = ""
        self._sequence = 0
        self.latency_ms = Window()
        self.e2e_ms = Window()
        self.overhead_ms = Window()
        self.chunk_rate = RateMeter()
        self._input_error = ""

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (ParamsError, ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
            return self._configure_failed(str(exc))
        except Exception:
            return self._configure_failed(traceback.format_exc(limit=6))
        self._config_error = ""
        self._lifecycle = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, message: str) -> TransitionCallbackReturn:
        self._config_error = f"configure failed: {message}"
        self.get_logger().error(self._config_error)
        self._release()
        return TransitionCallbackReturn.FAILURE

    def _configure(self) -> None:
        params = self._read_params()
        from rynnvla_policy.node.instruction import validate_instruction

        instruction = (
            validate_instruction(params.instruction, params.max_instruction_chars)
            if params.instruction
            else ""
        )
        self.get_logger().info(f"loading checkpoint {params.checkpoint_path} on {params.device}")
        runner = self._runner_loader(params.checkpoint_path, params.device, params.cpu_threads)
        self.timing = check_contract(params, runner.contract)
        self.params, self.runner, self.instruction = params, runner, instruction
        self.joint_names = tuple(runner.contract.joint_names)
        report = warm_up(runner, params, self.joint_names, self._limits(), self.timing)
        self.get_logger().info(report.describe())
        if report.warning:
            self.get_logger().warning(report.warning)
        self._build_control()
        self._create_entities()
        if instruction:
            self._instruction_pub.publish(String(data=instruction))

    def _limits(self) -> SafetyLimits:
        p = self.params
        return SafetyLimits.from_lists(
            p.joint_names,
            p.joint_lower_limits,
            p.joint_upper_limits,
            p.joint_velocity_limits,
            p.max_first_target_distance,
        ).reordered(self.joint_names)

    def _build_control(self) -> None:
        p = self.params
        merger = OverlapMerger(p.overlap_policy, p.blend_steps, p.ensemble_decay, p.blend_shape)
        self.controller = ChunkController(
            self._limits(),
            self.timing.step_s,
            merger,
            p.latency_compensation,
            zero_last_velocity=p.end_velocity == "zero",
            send=self._send_trajectory,
            output_enabled=p.output_enabled,
        )
        self.buffers = InputBuffers(
            p.camera_max_age_map, STATE_STREAM, p.joint_states_max_age_s, p.max_future_stamp_s
        )

    def _create_entities(self) -> None:
        p = self.params
        self._trajectory_pub = self.create_publisher(
            messages.JointTrajectory, p.controller_topic, RELIABLE
        )
        self._chunk_pub = self.create_publisher(messages.ActionChunk, "~/action_chunk", RELIABLE)
        self._instruction_pub = self.create_publisher(String, "/instruction", LATCHED)
        subs = []
        for name, topic in p.camera_topic_map.items():
            msg_type = CompressedImage if p.camera_compressed_map[name] else Image
            callback = self._guard(lambda msg, name=name: self._on_image(name, msg))
            subs.append(
                self.create_subscription(msg_type, topic, callback, qos_profile_sensor_data)
            )
        subs.append(
            self.create_subscription(
                JointState,
                p.joint_states_topic,
                self._guard(self._on_joint_state),
                qos_profile_sensor_data,
            )
        )
        self.policy_services = PolicyServices(self)
        self._entities = [
            self._trajectory_pub,
            self._chunk_pub,
            self._instruction_pub,
            *subs,
            *self.policy_services.entities,
        ]

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.controller.restart()
            self.runner.reset()
            self._start_worker()
            self._watchdog = self.create_timer(self.timing.step_s, self._guard(self._watchdog_tick))
        except Exception:
            self._config_error = f"activate failed: {traceback.format_exc(limit=4)}"
            self.get_logger().error(self._config_error)
            return TransitionCallbackReturn.FAILURE
        self._lifecycle = "active"
        self.get_logger().info(
            f"active: output {'enabled' if self.controller.output_enabled else 'disabled (dry run)'}"
            f", instruction {self.instruction!r}"
        )
        return TransitionCallbackReturn.SUCCESS

    def _start_worker(self) -> None:
        self._worker = InferenceWorker(
            self.buffers,
            run_once=self._run_once,
            now_ns=self._now_ns,
            period_ns=round(self.timing.inference_period_s * NS),
            step_ns=round(self.timing.step_s * NS),
            should_run=self._should_infer,
            on_crash=self._on_worker_crash,
        )
        self._worker.start()

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_control(ControlState.HOLDING)
        self._lifecycle = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._lifecycle = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.safe_stop()
        self._lifecycle = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.safe_stop()
        self._lifecycle = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def safe_stop(self) -> None:
        """Hold the current position and release everything; safe to call at any time."""
        try:
            self._stop_control(ControlState.HOLDING)
        finally:
            self._release()

    def _stop_control(self, state: ControlState) -> None:
        if self._watchdog is not None:
            self.destroy_timer(self._watchdog)
            self._watchdog = None
        if self._worker is not None:
            if not self._worker.stop(timeout_s=10.0):
                self.get_logger().error("inference thread did not stop within 10 s")
            self._worker = None
        if self.controller is not None:
            position = self.current_position()
            if self.controller.hold(position, self._now_ns(), state):
                self.get_logger().info(f"holding position {np.round(position, 4).tolist()}")

    def _release(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self._trajectory_pub is not None:
            # a hold published just before exit must reach the controller (reliable QoS)
            self._trajectory_pub.wait_for_all_acked(Duration(seconds=1.0))
        if self._watchdog is not None:
            self.destroy_timer(self._watchdog)
        for entity in self._entities:
            self._destroy(entity)
        self._reset_runtime()

    def _destroy(self, entity: Any) -> None:
        for destroy in (
            self.destroy_publisher,
            self.destroy_subscription,
            self.destroy_service,
        ):
            try:
                if destroy(entity):
                    return
            except (TypeError, AttributeError):
                continue

    def _auto_activate(self) -> None:
        self.destroy_timer(self._auto_timer)
        self._auto_timer = None
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ------------------------------------------------------------------ inputs
    def _on_image(self, name: str, msg: Image | CompressedImage) -> None:
        start = time.perf_counter()
        try:
            stamp = conversions.stamp_to_ns(msg.header.stamp)
            self.buffers.check_stamp(name, stamp, self._now_ns())
            rgb = conversions.image_to_rgb(msg)
        except (conversions.ConversionError, StampError) as exc:
            self._drop_input(name, str(exc))
            return
        self.buffers.put(name, rgb, stamp, time.perf_counter() - start)

    def _on_joint_state(self, msg: JointState) -> None:
        start = time.perf_counter()
        try:
            stamp = conversions.stamp_to_ns(msg.header.stamp)
            self.buffers.check_stamp(STATE_STREAM, stamp, self._now_ns())
            positions = conversions.joint_positions(msg, self.joint_names)
        except (conversions.ConversionError, StampError) as exc:
            self._drop_input(STATE_STREAM, str(exc))
            return
        bad = [j for j, v in zip(self.joint_names, positions, strict=True) if not np.isfinite(v)]
        if bad:
            self._drop_input(STATE_STREAM, f"non-finite positions for {bad}")
            return
        self.buffers.put(STATE_STREAM, positions, stamp, time.perf_counter() - start)

    def _drop_input(self, stream: str, reason: str) -> None:
        self.controller.counters.dropped_inputs += 1
        self.buffers.note_dropped(stream, reason)
        message = f"dropped input {stream}: {reason}"
        if message != self._input_error:  # log each new problem once, not 30 times a second
            self.get_logger().warning(message)
        self._input_error = message
        self.controller.last_error = message

    def current_position(self) -> np.ndarray | None:
        """Newest measured joint positions (even if stale), None before the first one."""
        sample = self.buffers.latest(STATE_STREAM) if self.buffers else None
        return None if sample is None else sample.value

    # ------------------------------------------------------------------ control
    def _should_infer(self) -> bool:
        c = self.controller
        return (
            self._lifecycle == "active"
            and c is not None
            and not c.stopped
            and bool(self.instruction)
        )

    def _run_once(self, snapshot: Snapshot) -> None:
        """One inference on the worker thread: model, safety, publish, bookkeeping."""
        from rynnvla_policy.core import Observation

        if self.policy_services.take_reset_request():
            self.runner.reset()
        start = time.perf_counter()
        instruction = self.instruction
        observation = Observation(
            images=snapshot.images, state=snapshot.state, instruction=instruction
        )
        model_start = time.perf_counter()
        try:
            result = self.runner.infer(observation)
        except Exception as exc:
            self.controller.on_inference_error(
                f"{type(exc).__name__}: {exc}", self.current_position(), self._now_ns()
            )
            self.get_logger().error(f"inference failed: {traceback.format_exc(limit=4)}")
            return
        infer_s = time.perf_counter() - model_start
        outcome = self.controller.on_chunk(
            result.positions, snapshot.stamp_ns, snapshot.state, self._now_ns(), snapshot.taken_ns
        )
        e2e_s = (self._now_ns() - snapshot.stamp_ns) / NS
        self._publish_chunk(result, snapshot, instruction, infer_s, e2e_s)
        if outcome.plan is not None:
            # node overhead = this step outside the model + converting the frames it used
            overhead_s = time.perf_counter() - start - infer_s + snapshot.decode_s
            self.chunk_rate.tick(time.monotonic())
            self.latency_ms.add(infer_s * 1e3)
            self.e2e_ms.add(e2e_s * 1e3)
            self.overhead_ms.add(overhead_s * 1e3)

    def _publish_chunk(
        self, result, snapshot: Snapshot, instruction: str, infer_s: float, e2e_s: float
    ) -> None:
        self._sequence += 1
        record = messages.ChunkRecord(
            positions=np.asarray(result.positions, dtype=np.float64),
            latent=np.asarray(result.latent),
            obs_stamp_ns=snapshot.stamp_ns,
            step_ns=round(self.timing.step_s * NS),
            instruction=instruction,
            inference_s=infer_s,
            end_to_end_s=e2e_s,
            sequence=self._sequence,
        )
        self._chunk_pub.publish(messages.action_chunk(record, self.joint_names))

    def _send_trajectory(self, data) -> None:
        self._trajectory_pub.publish(messages.joint_trajectory(data, self.joint_names))

    def _watchdog_tick(self) -> None:
        now = self._now_ns()
        stale = self.buffers.stale(now)
        if stale.reasons:
            self.controller.on_stale(stale.describe(), self.current_position(), now)
        else:
            self.controller.on_fresh()

    def _on_worker_crash(self, trace: str) -> None:
        self.controller.on_inference_error(
            trace.strip().splitlines()[-1], self.current_position(), self._now_ns()
        )
        self.get_logger().error(f"inference step crashed: {trace}")

    # ------------------------------------------------------------------ status
    def _publish_status(self) -> None:
        report = self.status_report()
        self._status_pub.publish(messages.policy_status(report))
        self._diag_pub.publish(messages.diagnostics(report, self.get_name()))

    def status_report(self) -> messages.StatusReport:
        now = self._now_ns()
        c = self.controller
        ages, stale = {}, ()
        if self.buffers is not None:
            for stream in self.buffers.stream_names:
                sample = self.buffers.latest(stream)
                ages[stream] = float("inf") if sample is None else (now - sample.stamp_ns) / 1e6
            stale = tuple(self.buffers.stale(now).streams) if self._lifecycle == "active" else ()
        return messages.StatusReport(
            stamp_ns=now,
            lifecycle_state=self._lifecycle,
            control_state=c.state if c else ControlState.IDLE,
            output_enabled=c.output_enabled if c else False,
            active_instruction=self.instruction,
            latency_last_ms=self.latency_ms.last(),
            latency_mean_ms=self.latency_ms.mean(),
            latency_p99_ms=self.latency_ms.percentile(99),
            end_to_end_p50_ms=self.e2e_ms.percentile(50),
            end_to_end_p99_ms=self.e2e_ms.percentile(99),
            overhead_p50_ms=self.overhead_ms.percentile(50),
            overhead_p99_ms=self.overhead_ms.percentile(99),
            achieved_rate_hz=self.chunk_rate.rate(time.monotonic()),
            counters=c.counters if c else messages.Counters(),
            stale_streams=stale,
            stream_ages_ms=ages,
            last_error=(c.last_error if c else "") or self._config_error,
        )

    # ------------------------------------------------------------------ helpers
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _guard(self, callback):
        """Wrap a callback so that no exception escapes into the executor."""

        def guarded(*args):
            try:
                return callback(*args)
            except Exception:
                message = traceback.format_exc(limit=4)
                self.get_logger().error(
                    f"{getattr(callback, '__name__', 'callback')} failed: {message}"
                )
                if self.controller is not None:
                    self.controller.last_error = message.strip().splitlines()[-1]
                return None

        return guarded
