"""Console entry point `policy_node`: run the lifecycle policy node until interrupted."""

from __future__ import annotations

import os
import signal
import sys


def _local_dds_defaults() -> None:
    # Keep DDS discovery on this machine unless the caller chose otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")


class _StopSignal:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, and remember it.

    The interrupt can land while an rclpy binding converts its arguments in Python; pybind11
    then reports it as a RuntimeError ("Unable to convert call argument ..."), not as the
    KeyboardInterrupt (seen once in a fresh-clone CI run of the SIGTERM test). `received`
    tells such an error apart from a real fault.
    """

    def __init__(self) -> None:
        self.received = False

    def __call__(self, signum, frame) -> None:
        self.received = True
        raise KeyboardInterrupt


def main(args: list[str] | None = None, runner_loader=None) -> int:
    """Spin the node; on Ctrl-C or SIGTERM command a hold before exiting.

    `args`: command line for rclpy (`--ros-args ...`); `runner_loader`: see PolicyNode.

    rclpy's own signal handler is disabled so that the context stays valid after a signal and
    the node can still publish its hold command (Jazzy-compatible: no `with rclpy.init()`).
    """
    _local_dds_defaults()
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from rynnvla_policy.node.policy_node import PolicyNode

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop_signal = _StopSignal()
    signal.signal(signal.SIGINT, stop_signal)
    signal.signal(signal.SIGTERM, stop_signal)
    node = None
    code = 0
    try:
        node = PolicyNode(runner_loader=runner_loader)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:
        if stop_signal.received:  # our signal, surfaced through a binding (see _StopSignal)
            print(f"policy_node: stopping on a signal (raised as {exc!r})", file=sys.stderr)
        else:  # a bug: report it, still stop safely
            print(f"policy_node: fatal error: {exc!r}", file=sys.stderr)
            code = 1
    finally:
        if node is not None:
            try:
                node.safe_stop()
            except Exception as exc:
                print(f"policy_node: safe stop failed: {exc!r}", file=sys.stderr)
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
