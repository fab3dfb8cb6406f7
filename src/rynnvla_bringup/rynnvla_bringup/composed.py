"""`rynnvla-run`: the sim node and the policy node in ONE process, for machines without
`ros2 launch` (and for tests, evaluation and the demo).

    rynnvla-run --checkpoint path/to/ckpt                       # simulated arm + policy
    rynnvla-run --checkpoint ckpt --robot so100 --no-sim        # policy only, hardware profile
    rynnvla-run --checkpoint ckpt -p execution_horizon:=8 --sim-param camera_rate_hz:=15

Parameters come from the same YAML files as the launch files, layered by
`rynnvla_bringup.params` (node defaults, robot profile, then overrides) and handed to rclpy as
`--params-file` arguments plus parameter overrides. Library use:

    with ComposedSystem(ComposedConfig(checkpoint="ckpt")) as system:
        system.client.reset_episode("block_to_plate", seed=3)

Nodes share one MultiThreadedExecutor spun by a background thread; the policy's inference runs
on its own thread; the sim's physics and rendering on theirs. Shutdown: the policy holds, the
sim stops, the executor and the context are shut down, every thread is joined.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rynnvla_bringup.params import (
    DEFAULT_ROBOT,
    ParamLayers,
    ParamsLayerError,
    parse_override,
    policy_layers,
    sim_layers,
)

DEFAULT_THREADS = 4


class ComposedSystemError(RuntimeError):
    """The system could not start (bad parameters, checkpoint, GL ...); the message says why."""


def local_dds_defaults() -> None:
    """DDS discovery stays on this machine unless the caller chose otherwise."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass(frozen=True)
class ComposedConfig:
    """What to run. Overrides are the last parameter layer (ROS parameter names and values)."""

    checkpoint: str | Path | None = None
    robot: str | Path = DEFAULT_ROBOT
    with_sim: bool = True
    policy_overrides: Mapping[str, Any] = field(default_factory=dict)
    sim_overrides: Mapping[str, Any] = field(default_factory=dict)
    policy_params_files: Sequence[str | Path] = ()
    sim_params_files: Sequence[str | Path] = ()
    # Simulated seconds per wall second (the sim publishes /clock, the policy node follows it).
    real_time_factor: float = 1.0
    # Configure + activate the policy node during start() (errors raise there).
    activate: bool = True
    threads: int = DEFAULT_THREADS

    def __post_init__(self) -> None:
        if self.checkpoint is not None and not Path(self.checkpoint).is_dir():
            raise ComposedSystemError(f"checkpoint={str(self.checkpoint)!r}: no such directory")
        if not (self.real_time_factor >= 0):
            raise ComposedSystemError(
                f"real_time_factor={self.real_time_factor!r}: must be >= 0 (0 = as fast as possible)"
            )
        if "real_time_factor" in self.sim_overrides:
            raise ComposedSystemError(
                "sim_overrides['real_time_factor']: set ComposedConfig.real_time_factor instead "
                "(the policy node's use_sim_time follows it)"
            )
        if self.threads < 2:
            raise ComposedSystemError(f"threads={self.threads}: need at least 2")

    def policy_layers(self) -> ParamLayers:
        overrides: dict[str, Any] = {}
        if self.checkpoint is not None:
            overrides["checkpoint_path"] = str(Path(self.checkpoint).resolve())
        if self.with_sim:
            # The policy runs on the sim's clock (/clock), whatever the real-time factor: if the
            # sim falls behind the wall clock on a busy machine, its stamps stay "fresh" for the
            # policy instead of turning every input stale.
            overrides["use_sim_time"] = True
        overrides.update(self.policy_overrides)
        return policy_layers(self.robot, overrides, extra_files=self.policy_params_files)

    def sim_layers(self) -> ParamLayers:
        overrides = {
            "real_time_factor": float(self.real_time_factor),
            "publish_clock": True,  # the policy node uses it (see policy_layers)
            **self.sim_overrides,
        }
        return sim_layers(overrides, extra_files=self.sim_params_files)


def typed_overrides(layers: ParamLayers) -> list:
    """rclpy Parameters for the overrides, numbers matching the type the files give them
    (an integer 2 for a parameter written 2.0 would be refused by rclpy)."""
    from rclpy.parameter import Parameter

    base = ParamLayers(layers.node, layers.files).merged()
    out = []
    for name, value in layers.overrides.items():
        reference = base.get(name)
        if isinstance(reference, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(reference, list) and reference and isinstance(reference[0], float):
            value = [float(v) if isinstance(v, int) else v for v in value]
        out.append(Parameter(name, value=value))
    return out


class ComposedSystem:
    """Sim node (optional) + policy node + a `SystemClient`, spun by one executor thread."""

    def __init__(self, config: ComposedConfig):
        self.config = config
        self.context = None
        self.executor = None
        self.sim = None
        self.policy = None
        self.client = None
        self._spin_thread: threading.Thread | None = None
        self._stop_spinning = threading.Event()
        self._closed = False

    # ------------------------------------------------------------------ start / stop
    def __enter__(self) -> ComposedSystem:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Create the nodes, start the sim, spin, then configure + activate the policy."""
        local_dds_defaults()
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        # Import the model stack (torch, transformers) before any thread runs: the policy's
        # configure would otherwise import it while the sim's threads and the executor compete
        # for the GIL (seen: minutes instead of seconds).
        import rynnvla_policy.core.runner  # noqa: F401

        self.context = rclpy.context.Context()
        # No rclpy signal handlers: the caller owns Ctrl-C and still gets a clean hold.
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        try:
            self.executor = MultiThreadedExecutor(
                num_threads=self.config.threads, context=self.context
            )
            if self.config.with_sim:
                self._start_sim()
            self._create_policy()
            from rynnvla_bringup.client import SystemClient

            self.client = SystemClient(context=self.context)
            self.executor.add_node(self.client)
            self._spin_thread = threading.Thread(
                target=self._spin, name="rynnvla_executor", daemon=True
            )
            self._spin_thread.start()
            if self.config.activate:
                self.activate()
        except BaseException:
            self.close()
            raise

    def _start_sim(self) -> None:
        from rynnvla_sim.node.params import SimParamsError
        from rynnvla_sim.node.sim_node import SimNode

        layers = self.config.sim_layers()
        try:
            self.sim = SimNode(
                context=self.context,
                cli_args=layers.cli_args(),
                parameter_overrides=typed_overrides(layers),
            )
        except SimParamsError as exc:
            raise ComposedSystemError(f"sim node: {exc}") from exc
        self.executor.add_node(self.sim)
        self.sim.start()

    def _create_policy(self) -> None:
        from rynnvla_policy.node.policy_node import PolicyNode

        layers = self.config.policy_layers()
        self.policy = PolicyNode(
            context=self.context,
            cli_args=layers.cli_args(),
            parameter_overrides=typed_overrides(layers),
        )
        self.executor.add_node(self.policy)

    def activate(self) -> None:
        """Configure (load + warm up the model) and activate the policy node."""
        from rclpy.lifecycle import TransitionCallbackReturn

        if self.policy.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise ComposedSystemError(f"policy node: {self.policy._config_error}")
        if self.policy.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise ComposedSystemError(f"policy node: {self.policy._config_error}")

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        with contextlib.suppress(ExternalShutdownException):
            while not self._stop_spinning.is_set() and self.context.ok():
                self.executor.spin_once(timeout_sec=0.1)
                # rclpy's MultiThreadedExecutor returns at once, without waiting, while a ready
                # entity's mutually exclusive group is busy: unpaused, this loop holds the GIL
                # and starves the sim's physics thread and the inference thread (seen: the sim
                # at a fraction of real time). 0.5 ms bounds the extra dispatch latency.
                time.sleep(0.0005)

    def _stop_executor(self) -> None:
        """Stop spinning, let running callbacks finish, then shut the executor down.

        rclpy's MultiThreadedExecutor.shutdown destroys its guard condition before its worker
        threads end, so a callback still running then fails ("cannot use Destroyable") and
        rclpy prints the unretrieved error at exit. Draining the workers first avoids that.
        """
        self._stop_spinning.set()
        if self._spin_thread is not None:
            self._spin_thread.join(timeout=5.0)
        workers = getattr(self.executor, "_executor", None)  # rclpy's ThreadPoolExecutor
        if workers is not None:
            workers.shutdown(wait=True)
        self.executor.shutdown(timeout_sec=5.0)

    def close(self) -> None:
        """Stop spinning, hold the arm, stop the sim, shut everything down (idempotent)."""
        if self._closed:
            return
        self._closed = True
        import rclpy

        # The executor stops first: no callback may run on an entity being destroyed. The hold
        # is then published without it (publishing needs no spinning).
        if self.executor is not None:
            self._stop_executor()
        if self.policy is not None:
            self.policy.safe_stop()
        if self.sim is not None:
            self.sim.stop()
        for node in (self.client, self.policy, self.sim):
            if node is not None:
                node.destroy_node()
        if self.context is not None:
            rclpy.try_shutdown(context=self.context)

    # ------------------------------------------------------------------ queries
    def wait_until_running(self, timeout_s: float = 60.0) -> None:
        """Block until the policy reports `running` or a dry-run chunk (inputs are flowing)."""
        client = self.client

        def running() -> bool:
            status = client.policy_status
            return status is not None and (
                status.control_state_label == "running" or client.last_chunk is not None
            )

        client.wait_for(running, timeout_s, "policy node running on live inputs")


# ---------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rynnvla-run",
        description="Run the simulated arm and the RynnVLA policy node in one process "
        "(parameters from the same YAML files as the launch files).",
    )
    parser.add_argument("--checkpoint", required=True, help="policy checkpoint directory")
    parser.add_argument(
        "--robot",
        default=DEFAULT_ROBOT,
        help="robot profile name (sim_arm, so100, so101, generic_6dof) or YAML path",
    )
    parser.add_argument(
        "--no-sim", action="store_true", help="policy node only (a robot or another sim)"
    )
    parser.add_argument("--task", default="", help="first episode's task (sim)")
    parser.add_argument("--seed", type=int, default=None, help="first episode's seed (sim)")
    parser.add_argument(
        "--instruction",
        default="auto",
        help="initial instruction; auto = the sim task's, '' = wait for set_instruction",
    )
    parser.add_argument(
        "--real-time-factor", type=float, default=1.0, help="sim seconds per wall second"
    )
    parser.add_argument("--params-file", action="append", default=[], help="extra policy YAML")
    parser.add_argument("--sim-params-file", action="append", default=[], help="extra sim YAML")
    parser.add_argument(
        "-p", "--param", action="append", default=[], help="policy parameter name:=value"
    )
    parser.add_argument(
        "--sim-param", action="append", default=[], help="sim parameter name:=value"
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> ComposedConfig:
    policy = dict(parse_override(text) for text in args.param)
    sim = dict(parse_override(text) for text in args.sim_param)
    rtf = sim.pop("real_time_factor", args.real_time_factor)
    if args.task:
        sim["task_id"] = args.task
    if args.seed is not None:
        sim["seed"] = args.seed
    if args.instruction == "auto" and not args.no_sim:
        from rynnvla_sim.tasks import TASKS

        task = sim.get("task_id") or sim_layers().merged().get("task_id", "")
        policy.setdefault("instruction", TASKS.get(task, ""))
    elif args.instruction != "auto":
        policy.setdefault("instruction", args.instruction)
    return ComposedConfig(
        checkpoint=args.checkpoint,
        robot=args.robot,
        with_sim=not args.no_sim,
        policy_overrides=policy,
        sim_overrides=sim,
        policy_params_files=tuple(args.params_file),
        sim_params_files=tuple(args.sim_params_file),
        real_time_factor=float(rtf),
    )


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (docker stop, systemd) stops like Ctrl-C: the policy holds, then all stops
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        config = config_from_args(args)
        system = ComposedSystem(config)
        system.start()
    except (ComposedSystemError, ParamsLayerError) as exc:
        print(f"rynnvla-run: {exc}", file=sys.stderr)
        return 2
    print(
        f"rynnvla-run: {'sim + ' if config.with_sim else ''}policy running "
        f"(robot {config.robot}); Ctrl-C to stop",
        flush=True,
    )
    try:
        finished = threading.Event()  # never set: wait for the duration or Ctrl-C
        finished.wait(args.duration if args.duration > 0 else None)
    except KeyboardInterrupt:
        pass
    finally:
        system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
