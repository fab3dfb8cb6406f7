"""Benchmark of the policy node (``make bench-node``), against the simulated arm node.

Three processes, as deployed: the sim node (MuJoCo arm, 2 cameras 128x96 rgb8 at 30 Hz,
joint_trajectory_controller semantics), the policy node, and this probe.

1. Latency (``--duration`` s, default 30): the policy node with a tiny random-weight checkpoint
   and its shipped defaults. End-to-end latency = observation capture stamp -> trajectory
   publish (measured by the node, published in ActionChunk.end_to_end_latency; cross-checked by
   the probe's receive time); model latency; node overhead (per chunk: frame conversion +
   everything but the model, from /diagnostics); the node process's CPU use and memory.
   Queue growth: end-to-end latency and memory of the first vs the last third of the run
   (``--duration 600`` for the 10-minute check).
2. Chunk-boundary smoothness (``--smooth-duration`` s per run, default 20): the largest
   joint-velocity jump of the simulated arm at chunk switches, for each overlap policy and for
   the naive publisher (each chunk stamped zero, played from arrival, no overlap handling).
   A random-weight model drifts into the joint limits, so here the model's output is replaced
   by a stand-in policy that continues a smooth limit cycle from the observed state (what a
   trained model does) with a per-chunk prediction error; the real tiny model still runs on
   every observation, so timing and load are real. The jump is the velocity change not
   explained by the motion before the switch (linear trend over 100 ms before, residual over
   100 ms after; velocities averaged over 30 ms), max over joints; the noise floor is the same
   measure halfway between switches. The same measure on the controller's command (the
   received trajectories replayed through the sim's joint_trajectory_controller follower at
   their arrival times, sampled at 500 Hz) shows the chunk handling without sensor noise.
   A chunk that follows a hold or a chunk that ran out (the loaded machine stalled) restarts
   the arm from rest: counted as a restart, not a switch.

Prints a table, then ONE JSON line with e2e_p50_ms, e2e_p99_ms, overhead_p50_ms,
velocity_jump_ratio (naive / shipped overlap policy, largest jump of the controller's command),
velocity_jump_ratio_arm (the same on the measured joint velocities; bounded by their noise:
arm_jump_between_switches is the same measure where no switch happens), and more.
Targets: e2e p50 <= 50 ms, p99 <= 100 ms; overhead p50 <= 5 ms; jump ratio >= 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
os.environ.setdefault("MUJOCO_GL", "egl")

NS = 1_000_000_000
SHIPPED_POLICY = "blend"  # the default in config/policy_node.yaml
SMOOTH_RUNS = {
    "naive": {"latency_compensation": "none", "overlap_policy": "latest"},
    "latest": {"overlap_policy": "latest"},
    "blend": {"overlap_policy": "blend"},
    "ensemble": {"overlap_policy": "ensemble"},
}


# ============================================================================ stand-in policy
@dataclasses.dataclass(frozen=True)
class LimitCycle:
    """Joint-space limit cycles (Hopf oscillators) on joint pairs; other joints settle."""

    center: np.ndarray  # (6,)
    pairs: tuple[tuple[int, int], ...] = ((0, 1), (2, 3))
    radius: float = 0.25  # rad
    omega: float = np.pi  # rad/s: one cycle per 2 s, peak joint speed ~0.8 rad/s
    gain: float = 3.0  # attraction to the cycle / to the center

    def velocity(self, q: np.ndarray) -> np.ndarray:
        x = q - self.center
        v = -self.gain * x
        for i, j in self.pairs:
            xi, xj = x[i], x[j]
            pull = self.gain * (1.0 - (xi * xi + xj * xj) / self.radius**2)
            v[i] = -self.omega * xj + pull * xi
            v[j] = self.omega * xi + pull * xj
        return v

    def rollout(self, q: np.ndarray, steps: int, dt: float, substeps: int = 10) -> np.ndarray:
        out = np.empty((steps, len(q)))
        q = q.astype(np.float64).copy()
        for k in range(steps):
            for _ in range(substeps):
                q = q + (dt / substeps) * self.velocity(q)
            out[k] = q
        return out  # (steps, 6)


class CyclePolicy:
    """Runs the real tiny model (for timing), returns the limit-cycle continuation instead."""

    def __init__(self, runner, noise_rad: float, seed: int = 0):
        from rynnvla_sim.scenes.arm import HOME_QPOS

        self.runner = runner
        self.contract = runner.contract
        self.noise_rad = noise_rad
        self.rng = np.random.default_rng(seed)
        self.cycle = LimitCycle(center=np.asarray(HOME_QPOS) - [0.1, 0.0, 0.1, 0.0, 0.0, 0.0])

    def reset(self) -> None:
        self.runner.reset()

    def infer(self, observation):
        result = self.runner.infer(observation)
        c = self.contract
        positions = self.cycle.rollout(np.asarray(observation.state), c.chunk_length, 1 / c.fps)
        error = self.rng.normal(0.0, self.noise_rad, size=positions.shape[1])  # (6,) per chunk
        return dataclasses.replace(result, positions=positions + error)


def child_main(argv: list[str]) -> int:
    """The policy node process (``--child-node model|cycle``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child-node", choices=["model", "cycle"])
    parser.add_argument("--noise-rad", type=float, default=0.01)
    known, ros_args = parser.parse_known_args(argv)
    from rynnvla_policy.node.main import main
    from rynnvla_policy.node.warmup import load_runner

    def loader(path, device, cpu_threads):
        runner = load_runner(path, device, cpu_threads)
        return runner if known.child_node == "model" else CyclePolicy(runner, known.noise_rad)

    return main(ros_args, runner_loader=loader)


# ============================================================================ processes
def write_params(path: Path, checkpoint: Path, cpu_threads: int, **overrides) -> Path:
    import yaml

    from rynnvla_sim.scenes.arm import JOINT_LIMITS, JOINT_NAMES, VELOCITY_LIMITS

    params = {
        "checkpoint_path": str(checkpoint),
        "output_enabled": True,
        "auto_activate": True,
        "instruction": "put the green block on the plate",
        "warmup_runs": 10,
        "warmup_image_shape": [96, 128],
        "cpu_threads": cpu_threads,
        # the sim arm's joints and limits
        "joint_names": list(JOINT_NAMES),
        "joint_lower_limits": JOINT_LIMITS[:, 0].tolist(),
        "joint_upper_limits": JOINT_LIMITS[:, 1].tolist(),
        "joint_velocity_limits": VELOCITY_LIMITS.tolist(),
        **overrides,
    }
    path.write_text(yaml.safe_dump({"rynnvla_policy": {"ros__parameters": params}}))
    return path


class Child:
    """A subprocess with its log in a file; stopped with SIGINT (the node holds, then exits)."""

    def __init__(self, argv: list[str], log: Path):
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


# ============================================================================ probe
class Probe:
    """Subscribes to everything the benchmark measures."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState
        from trajectory_msgs.msg import JointTrajectory

        from rynnvla_msgs.msg import ActionChunk, PolicyStatus
        from rynnvla_msgs.srv import ResetEpisode

        rclpy.init()
        self.node = rclpy.create_node("bench_node_probe")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.clear()
        n = self.node
        n.create_subscription(ActionChunk, "/rynnvla_policy/action_chunk", self._on_chunk, 50)
        n.create_subscription(PolicyStatus, "/rynnvla_policy/status", self._on_status, 10)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        n.create_subscription(
            JointTrajectory, "/arm_controller/joint_trajectory", self._on_trajectory, 50
        )
        n.create_subscription(JointState, "/joint_states", self._on_joints, qos_profile_sensor_data)
        n.create_subscription(
            Image, "/camera/front/image_raw", self._on_frame, qos_profile_sensor_data
        )
        self.reset_client = n.create_client(ResetEpisode, "/sim/reset_episode")
        self._reset_type = ResetEpisode

    def clear(self) -> None:
        self.chunks, self.statuses, self.trajectories = [], [], []
        self.joints, self.frames, self.overhead = [], [], []

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _on_chunk(self, msg) -> None:
        self.chunks.append((self.now_ns(), msg))

    def _on_status(self, msg) -> None:
        self.statuses.append(msg)

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith(": control"):
                values = {kv.key: kv.value for kv in status.values}
                self.overhead.append(
                    (float(values["overhead_p50_ms"]), float(values["overhead_p99_ms"]))
                )

    def _on_trajectory(self, msg) -> None:
        self.trajectories.append((self.now_ns(), msg))

    def _on_joints(self, msg) -> None:
        stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
        self.joints.append((stamp, np.array(msg.position), np.array(msg.velocity)))

    def _on_frame(self, msg) -> None:
        self.frames.append(msg.header.stamp.sec * NS + msg.header.stamp.nanosec)

    def spin_for(self, seconds: float, until=None) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and until():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return until() if until is not None else True

    def reset_sim(self, seed: int = 0) -> None:
        if not self.spin_for(20, self.reset_client.service_is_ready):
            raise RuntimeError("/sim/reset_episode is not available")
        future = self.reset_client.call_async(self._reset_type.Request(task_id="", seed=seed))
        self.spin_for(20, future.done)

    def close(self) -> None:
        import rclpy

        self.node.destroy_node()
        rclpy.try_shutdown()


# ============================================================================ measurements
def percentile(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def start_policy(mode: str, params: Path, workdir: Path, name: str, noise: float) -> Child:
    """The policy node in its own process (``--child-node``), auto-activating."""
    argv = [sys.executable, __file__, "--child-node", mode, "--noise-rad", str(noise)]
    return Child([*argv, "--ros-args", "--params-file", str(params)], workdir / f"{name}.log")


def wait_running(probe: Probe, child: Child, timeout_s: float = 120.0) -> None:
    """Spin until the new node reports `running` (call probe.clear() before starting it)."""
    ok = probe.spin_for(
        timeout_s,
        lambda: (
            not child.alive() or any(s.control_state_label == "running" for s in probe.statuses)
        ),
    )
    if not ok or not child.alive():
        last = probe.statuses[-1] if probe.statuses else None
        state = f"{last.control_state_label}: {last.last_error}" if last else "no status"
        raise RuntimeError(
            f"policy node did not start ({state}):\n{child.log_path.read_text()[-3000:]}"
        )


def latency_run(probe: Probe, args, checkpoint: Path, workdir: Path) -> dict:
    from tqdm import tqdm

    params = write_params(workdir / "latency.yaml", checkpoint, args.cpu_threads)
    probe.clear()
    child = start_policy("model", params, workdir, "latency", 0.0)
    try:
        wait_running(probe, child)
        probe.spin_for(2.0)  # settle
        probe.clear()
        cpu0, wall0, rss = child.cpu_seconds(), time.monotonic(), [child.rss_mb()]
        steps = max(1, int(args.duration))
        for _ in tqdm(range(steps), desc="latency run", unit="s", leave=False):
            probe.spin_for(args.duration / steps)
            rss.append(child.rss_mb())
        cpu_percent = 100 * (child.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        if not child.alive():
            raise RuntimeError(child.log_path.read_text()[-3000:])
    finally:
        child.stop()
    e2e = np.array([m.end_to_end_latency * 1e3 for _, m in probe.chunks])
    model = np.array([m.inference_latency * 1e3 for _, m in probe.chunks])
    stamps = {m.header.stamp.sec * NS + m.header.stamp.nanosec for _, m in probe.chunks}
    received = np.array(
        [
            (rx - (m.header.stamp.sec * NS + m.header.stamp.nanosec)) / 1e6
            for rx, m in probe.trajectories
            if m.header.stamp.sec * NS + m.header.stamp.nanosec in stamps
        ]
    )
    third = max(1, len(e2e) // 3)
    overhead = probe.overhead[-1] if probe.overhead else (float("nan"), float("nan"))
    frame_rate = (len(probe.frames) - 1) / ((probe.frames[-1] - probe.frames[0]) / NS)
    final = probe.statuses[-1]
    return {
        "e2e_p50_ms": percentile(e2e, 50),
        "e2e_p99_ms": percentile(e2e, 99),
        "e2e_receive_p50_ms": percentile(received, 50),
        "model_p50_ms": percentile(model, 50),
        "model_p99_ms": percentile(model, 99),
        "overhead_p50_ms": overhead[0],
        "overhead_p99_ms": overhead[1],
        "cpu_percent": cpu_percent,
        "chunks": len(e2e),
        "chunk_rate_hz": len(e2e) / args.duration,
        "camera_rate_hz": frame_rate,
        "e2e_p50_first_third_ms": percentile(e2e[:third], 50),
        "e2e_p50_last_third_ms": percentile(e2e[-third:], 50),
        "rss_start_mb": rss[0],
        "rss_growth_mb": float(
            np.median(rss[-max(1, len(rss) // 3) :]) - np.median(rss[: max(1, len(rss) // 3)])
        ),
        "stale_inputs": int(final.stale_inputs),
        "rejected_chunks": int(final.rejected_chunks),
        "dropped_inputs": int(final.dropped_inputs),
    }


def smooth(velocities: np.ndarray, width: int = 3) -> np.ndarray:
    """Centred moving average over `width` samples (30 ms at 100 Hz): removes the sample-to-
    sample noise of the simulated joints' velocity, keeps changes that last a control step."""
    kernel = np.ones(width) / width
    out = velocities.copy()
    half = width // 2
    for j in range(velocities.shape[1]):
        out[half:-half, j] = np.convolve(velocities[:, j], kernel, mode="valid")
    return out


WINDOW_NS = 100_000_000  # 100 ms before / after a switch


def switch_jumps(joints, switch_ns, window_ns=WINDOW_NS, width: int = 3) -> np.ndarray:
    """Per switch time, the largest |velocity - linear trend before it| in the window after.

    joints: [(stamp_ns, positions, velocities)]; velocities are averaged over `width` samples.
    Windows where the joint states have a gap (the simulation stalled on the loaded machine:
    more than 2.5 sample periods between two samples) say nothing about smoothness: skipped.
    """
    stamps = np.array([s for s, _, _ in joints])
    velocities = np.array([v for _, _, v in joints])  # (N, 6)
    velocities = smooth(velocities, width) if width > 1 else velocities
    period = np.median(np.diff(stamps))
    jumps = []
    for t in switch_ns:
        before = (stamps >= t - window_ns) & (stamps < t)
        after = (stamps >= t) & (stamps <= t + window_ns)
        if before.sum() < 5 or after.sum() < 5:
            continue
        if np.diff(stamps[before | after]).max() > 2.5 * period:
            continue
        tb = (stamps[before] - t) / NS
        coeffs = np.polyfit(tb, velocities[before], 1)  # (2, 6) slope, intercept per joint
        ta = (stamps[after] - t) / NS
        predicted = np.outer(ta, coeffs[0]) + coeffs[1]
        jumps.append(np.abs(velocities[after] - predicted).max())
    return np.array(jumps)


def commanded_motion(trajectories, joints, rate_hz: float = 500.0) -> list:
    """The controller's command, replayed: every received trajectory submitted at its arrival
    to the sim's joint_trajectory_controller follower, sampled at the control rate.

    Returns [(t_ns, positions, velocities)] like the joint states. The command has no sensor
    noise, so its jumps at switches are exactly what the chunk handling produces.
    """
    from rynnvla_sim.trajectory import FollowerConfig, TrajectoryFollower

    names = tuple(trajectories[0][1].joint_names)
    follower = TrajectoryFollower(FollowerConfig(names), joints[0][1])
    period = round(NS / rate_hz)
    out, pending = [], list(trajectories)
    for t in range(int(pending[0][0]), int(joints[-1][0]), period):
        while pending and pending[0][0] <= t:
            rx, msg = pending.pop(0)
            follower.submit(msg, rx)
        position, velocity = follower.sample(t)
        out.append((t, position, velocity))
    return out


def smoothness_run(probe: Probe, name: str, overrides: dict, args, checkpoint, workdir) -> dict:
    params = write_params(workdir / f"{name}.yaml", checkpoint, args.cpu_threads, **overrides)
    probe.reset_sim(seed=0)
    probe.clear()
    child = start_policy("cycle", params, workdir, name, args.noise_rad)
    try:
        wait_running(probe, child)
        probe.spin_for(4.0)  # reach the limit cycle
        probe.clear()
        probe.spin_for(args.smooth_duration)
        if not child.alive():
            raise RuntimeError(child.log_path.read_text()[-3000:])
    finally:
        child.stop()
    received = np.array([rx for rx, _ in probe.trajectories])  # probe receive time, same host
    points = np.array([len(m.points) for _, m in probe.trajectories])
    np.savez(
        workdir / f"{name}_joints.npz",
        stamps=np.array([s for s, _, _ in probe.joints]),
        positions=np.array([p for _, p, _ in probe.joints]),
        velocities=np.array([v for _, _, v in probe.joints]),
        received=received,
        points=points,
    )
    span_ns = round(20 / 30 * NS)  # the tiny checkpoint: 20 steps at 30 Hz
    switches, restarts = chunk_switches(received, points, span_ns)
    jumps = switch_jumps(probe.joints, switches)
    command = commanded_motion(probe.trajectories, probe.joints)
    command_jumps = switch_jumps(command, switches, width=1)
    adjacent = np.diff(switches) < span_ns  # no restart in between
    floor = switch_jumps(probe.joints, ((switches[:-1] + switches[1:]) // 2)[adjacent])
    speed = np.abs(np.array([v for _, _, v in probe.joints])).max(axis=1)
    final = probe.statuses[-1]
    return {
        "switches": len(jumps),
        "restarts": restarts,
        "jump_max": float(jumps.max()) if len(jumps) else float("nan"),
        "jump_p95": percentile(jumps, 95),
        "command_jump_max": float(command_jumps.max()) if len(command_jumps) else float("nan"),
        "floor_max": float(floor.max()) if len(floor) else float("nan"),
        "speed_p50": percentile(speed, 50),
        "rejected_chunks": int(final.rejected_chunks),
        "stale_inputs": int(final.stale_inputs),
    }


def chunk_switches(received: np.ndarray, points: np.ndarray, span_ns: int, window_ns=WINDOW_NS):
    """(times where a chunk replaced a steadily running chunk, number of restarts).

    A chunk arriving after a hold (one point) or after the previous chunk ran out (the
    machine stalled) starts the arm from rest: a restart, not a chunk switch. A switch is
    measured only when the chunk before it ran for a whole window and was not a restart itself.
    """
    chunk = points > 1
    gaps = np.diff(received, prepend=received[0] - span_ns)
    restart = chunk & ~(np.roll(chunk, 1) & (gaps < span_ns))
    restart[0] = chunk[0]
    valid = chunk & ~restart & np.roll(~restart, 1) & (gaps >= window_ns)
    valid[0] = False
    valid[-1] = False  # no full window after the last one
    return received[valid], int(restart.sum())


# ============================================================================ main
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="latency run, seconds")
    parser.add_argument("--smooth-duration", type=float, default=20.0, help="per overlap run")
    parser.add_argument("--skip-smoothness", action="store_true")
    parser.add_argument("--cpu-threads", type=int, default=1, help="torch threads in the node")
    parser.add_argument("--noise-rad", type=float, default=0.01, help="stand-in chunk error")
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=list(SMOOTH_RUNS),
        default=list(SMOOTH_RUNS),
        help="smoothness runs to make (naive is always made: the ratios are against it)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:PARAM=VALUE[,PARAM=VALUE]",
        help="one more smoothness run with these node parameters, measured in the same "
        "conditions as the others, e.g. --variant blend10:blend_steps=10",
    )
    args = parser.parse_args(argv)
    args.runs = ["naive"] + [r for r in args.runs if r != "naive"]
    if SHIPPED_POLICY not in args.runs:
        parser.error(f"--runs must include {SHIPPED_POLICY!r}, the shipped overlap policy")
    args.variants = dict(_parse_variant(item, parser) for item in args.variant)
    return args


def _parse_variant(item: str, parser) -> tuple[str, dict]:
    """'blend10:blend_steps=10,blend_shape=smooth' -> ('blend10', {...}); the overlap policy
    is blend unless given."""
    import yaml

    name, sep, settings = item.partition(":")
    if not sep or not name or name in SMOOTH_RUNS:
        parser.error(f"--variant {item!r}: expected NEW_NAME:PARAM=VALUE[,PARAM=VALUE]")
    params = {"overlap_policy": "blend"}
    for setting in settings.split(","):
        key, eq, value = setting.partition("=")
        if not eq or not key:
            parser.error(f"--variant {item!r}: {setting!r} is not PARAM=VALUE")
        params[key.strip()] = yaml.safe_load(value)
    return name, params


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--child-node" in argv:
        return child_main(argv)
    args = parse_args(argv)
    import torch

    from rynnvla_policy.core.testing import make_tiny_checkpoint

    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="bench_node_"))
    checkpoint = make_tiny_checkpoint(workdir / "tiny", seed=0)
    sim = Child(
        [sys.executable, "-c", "from rynnvla_sim.node.main import main; main()"],
        workdir / "sim.log",
    )
    probe = Probe()
    results: dict = {}
    try:
        if not probe.spin_for(60, lambda: len(probe.joints) > 10 and len(probe.frames) > 5):
            raise RuntimeError(f"sim node did not start:\n{(workdir / 'sim.log').read_text()}")
        results["latency"] = latency_run(probe, args, checkpoint, workdir)
        if not args.skip_smoothness:
            from tqdm import tqdm

            runs = {name: SMOOTH_RUNS[name] for name in args.runs} | args.variants
            results["smoothness"] = {
                name: smoothness_run(probe, name, overrides, args, checkpoint, workdir)
                for name, overrides in tqdm(runs.items(), desc="smoothness runs")
            }
    finally:
        probe.close()
        sim.stop()
    report(results, args, workdir)
    return 0


def report(results: dict, args, workdir: Path) -> None:
    lat = results["latency"]
    print(f"\npolicy node benchmark (logs in {workdir})")
    print(
        f"  latency run: {args.duration:.0f} s, {lat['chunks']} chunks at {lat['chunk_rate_hz']:.2f} Hz, "
        f"cameras {lat['camera_rate_hz']:.1f} Hz"
    )
    for key in (
        "e2e_p50_ms",
        "e2e_p99_ms",
        "e2e_receive_p50_ms",
        "model_p50_ms",
        "model_p99_ms",
        "overhead_p50_ms",
        "overhead_p99_ms",
        "cpu_percent",
        "rss_start_mb",
        "rss_growth_mb",
        "e2e_p50_first_third_ms",
        "e2e_p50_last_third_ms",
    ):
        print(f"    {key:24s} {lat[key]:9.2f}")
    summary = {
        key: round(lat[key], 3)
        for key in (
            "e2e_p50_ms",
            "e2e_p99_ms",
            "overhead_p50_ms",
            "overhead_p99_ms",
            "model_p50_ms",
            "cpu_percent",
            "rss_growth_mb",
            "e2e_p50_first_third_ms",
            "e2e_p50_last_third_ms",
        )
    }
    summary["duration_s"] = args.duration
    if args.variants:
        summary["variants"] = args.variants
    rows = results.get("smoothness")
    if rows:
        print("  chunk-switch velocity jump (rad/s), max over switches and joints:")
        print("    arm = measured joint velocity; command = the controller's command (replayed)")
        naive, naive_cmd = rows["naive"]["jump_max"], rows["naive"]["command_jump_max"]
        for name, row in rows.items():
            print(
                f"    {name:9s} arm max {row['jump_max']:.3f} (p95 {row['jump_p95']:.3f}, "
                f"between switches {row['floor_max']:.3f}), naive/this {naive / row['jump_max']:.1f}x"
                f" | command max {row['command_jump_max']:.3f}, "
                f"naive/this {naive_cmd / row['command_jump_max']:.1f}x | switches "
                f"{row['switches']}, restarts {row['restarts']}, rejected {row['rejected_chunks']}"
            )
            summary[f"jump_{name}"] = round(row["jump_max"], 4)
            summary[f"command_jump_{name}"] = round(row["command_jump_max"], 4)
        shipped = rows[SHIPPED_POLICY]
        summary["velocity_jump_ratio"] = round(naive_cmd / shipped["command_jump_max"], 3)
        summary["velocity_jump_ratio_arm"] = round(naive / shipped["jump_max"], 3)
        summary["arm_jump_between_switches"] = round(shipped["floor_max"], 4)
        summary["velocity_jump_ratio_policy"] = SHIPPED_POLICY
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
