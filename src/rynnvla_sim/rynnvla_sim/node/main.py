"""``sim_node`` entry point: the simulated arm as a ROS 2 node.

Works on Jazzy and Kilted (no ``with rclpy.init()``); Ctrl-C stops physics, then the node.
Parameters: ``--ros-args --params-file config/sim_node.yaml`` (see that file).
"""

from __future__ import annotations

import os
import sys


def _keep_dds_local() -> None:
    """Discovery stays on this machine unless the user chose otherwise (see the README)."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")


def main(args: list[str] | None = None) -> int:
    _keep_dds_local()
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from rynnvla_sim.node.params import SimParamsError
    from rynnvla_sim.node.sim_node import SimNode
    from rynnvla_sim.rendering import GLBackendError

    rclpy.init(args=args)
    node = None
    try:
        node = SimNode()
        node.start()
        # Single-threaded on purpose: the callbacks are short, and rclpy's MultiThreadedExecutor
        # busy-loops on the GIL while a dispatched callback waits for a worker, which delays
        # the publishing thread (docs/simulation.md, troubleshooting).
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except SimParamsError as exc:
        print(f"sim_node: {exc}", file=sys.stderr)
        return 2
    except GLBackendError as exc:
        print(f"sim_node: cameras cannot be rendered: {exc}", file=sys.stderr)
        return 3
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
