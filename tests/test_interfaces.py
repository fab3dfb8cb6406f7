"""The generated rynnvla_msgs types work over real rclpy on real (localhost) DDS."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from rynnvla_msgs.msg import ActionChunk, PolicyStatus  # noqa: E402
from rynnvla_msgs.srv import SetInstruction  # noqa: E402


def _make_chunk() -> ActionChunk:
    chunk = ActionChunk()
    chunk.header.stamp.sec = 12
    chunk.header.stamp.nanosec = 345
    chunk.header.frame_id = "base_link"
    chunk.joint_names = [
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
        "wrist_roll",
        "gripper",
    ]
    chunk.step_duration.nanosec = 33_333_333
    chunk.horizon = 2
    chunk.positions = [float(i) / 10 for i in range(12)]
    chunk.instruction = "put the green block on the plate"
    chunk.latent = [0.5] * 32
    chunk.inference_latency = 0.021
    chunk.end_to_end_latency = 0.03
    chunk.sequence = 7
    return chunk


def test_action_chunk_and_status_cross_nodes(ros_context, spin_until):
    talker = rclpy.create_node("chunk_talker", context=ros_context)
    listener = rclpy.create_node("chunk_listener", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(talker)
    executor.add_node(listener)
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    chunks: list[ActionChunk] = []
    statuses: list[PolicyStatus] = []
    listener.create_subscription(ActionChunk, "action_chunk", chunks.append, 10)
    listener.create_subscription(PolicyStatus, "status", statuses.append, latched)
    chunk_pub = talker.create_publisher(ActionChunk, "action_chunk", 10)
    status_pub = talker.create_publisher(PolicyStatus, "status", latched)

    status = PolicyStatus()
    status.control_state = PolicyStatus.CONTROL_STALE
    status.control_state_label = "STALE"
    status.stale_streams = ["front_image"]
    status.latency_p99_ms = 41.5
    status.joint_limit_clips = 3
    status_pub.publish(status)

    sent = _make_chunk()

    def received() -> bool:
        chunk_pub.publish(sent)
        return bool(chunks) and bool(statuses)

    try:
        assert spin_until(executor, received, timeout_s=15.0), "no message crossed DDS in 15 s"
        got = chunks[0]
        assert list(got.joint_names) == list(sent.joint_names)
        assert list(got.positions) == pytest.approx(list(sent.positions))
        assert got.horizon * len(got.joint_names) == len(got.positions)
        assert got.step_duration.nanosec == 33_333_333
        assert got.header.stamp.sec == 12 and got.sequence == 7
        assert got.instruction == sent.instruction
        assert statuses[0].control_state == PolicyStatus.CONTROL_STALE
        assert list(statuses[0].stale_streams) == ["front_image"]
        assert statuses[0].joint_limit_clips == 3
    finally:
        executor.shutdown()
        talker.destroy_node()
        listener.destroy_node()


def test_set_instruction_service_cross_nodes(ros_context, spin_until):
    server = rclpy.create_node("instruction_server", context=ros_context)
    client_node = rclpy.create_node("instruction_client", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(server)
    executor.add_node(client_node)
    seen: list[tuple[str, bool]] = []

    def handle(request: SetInstruction.Request, response: SetInstruction.Response):
        seen.append((request.instruction, request.reset_history))
        response.accepted = bool(request.instruction.strip())
        response.message = "ok" if response.accepted else "instruction is empty"
        return response

    server.create_service(SetInstruction, "set_instruction", handle)
    client = client_node.create_client(SetInstruction, "set_instruction")
    try:
        assert spin_until(executor, client.service_is_ready, timeout_s=15.0), (
            "service never appeared"
        )
        request = SetInstruction.Request(
            instruction="put the pen in the holder", reset_history=True
        )
        future = client.call_async(request)
        assert spin_until(executor, future.done, timeout_s=10.0)
        assert future.result().accepted is True
        future = client.call_async(SetInstruction.Request(instruction="  "))
        assert spin_until(executor, future.done, timeout_s=10.0)
        assert future.result().accepted is False
        assert "empty" in future.result().message
        assert seen == [("put the pen in the holder", True), ("  ", False)]
    finally:
        executor.shutdown()
        server.destroy_node()
        client_node.destroy_node()
