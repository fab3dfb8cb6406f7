"""Console entry point `policy_node`: run the lifecycle policy node until interrupted."""

from __future__ import annotations

import os
import signal
import sys


def _local_dds_defaults() -> None:
    # Keep DDS discovery on this machine unless the caller chose otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")


def _raise_keyboard_interrupt(signum, frame) -> None:
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
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    node = None
    code = 0
    try:
        node = PolicyNode(runner_loader=runner_loader)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a bug: report it, still stop safely
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
