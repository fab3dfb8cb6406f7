"""Policy node services over DDS: instruction, reset, stop, enable_output (dry run)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros


@pytest.fixture
def active(make_node, robot, executor):
    """An active node with the synthetic robot, on one executor."""
    from rclpy.lifecycle import TransitionCallbackReturn

    def _active(**params):
        node = make_node(**params)
        executor.add_node(node)
        executor.add_node(robot.node)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        return node

    return _active


@pytest.fixture
def call(robot, executor, spin_until):
    """call(srv_type, name, request) -> response, over DDS."""
    clients = {}

    def _call(srv_type, name, request):
        if name not in clients:
            clients[name] = robot.node.create_client(srv_type, name)
        client = clients[name]
        assert spin_until(executor, client.service_is_ready, 10.0), f"{name} not available"
        future = client.call_async(request)
        assert spin_until(executor, future.done, 10.0)
        return future.result()

    return _call


def set_instruction(call, text, reset_history=False):
    from rynnvla_msgs.srv import SetInstruction

    request = SetInstruction.Request(instruction=text, reset_history=reset_history)
    return call(SetInstruction, "/rynnvla_policy/set_instruction", request)


def test_instruction_validation_and_latched_republish(
    active, robot, executor, spin_until, call, ros_context
):
    node = active(instruction="", max_instruction_chars=64)
    # no instruction yet: idle, nothing commanded
    assert spin_until(executor, lambda: robot.status_where(lambda s: s.lifecycle_state), 10.0)
    spin_until(executor, lambda: False, 1.0)
    assert robot.rec.chunks == [] and robot.last_status().control_state_label == "idle"
    refused = {
        "": "instruction is empty",
        "x" * 65: "65 characters, more than max_instruction_chars=64",
        "pick\x07place": "control character U+0007",
        "broken \ufffd": "not valid UTF-8",
    }
    for text, fragment in refused.items():
        response = set_instruction(call, text)
        assert not response.accepted
        assert fragment in response.message
    assert node.instruction == ""
    response = set_instruction(call, "put the strawberry in the bowl", reset_history=True)
    assert response.accepted, response.message
    assert "history reset" in response.message
    assert spin_until(executor, lambda: len(robot.rec.chunks) >= 1, 30.0)
    assert robot.rec.chunks[-1].instruction == "put the strawberry in the bowl"
    assert spin_until(
        executor,
        lambda: robot.status_where(
            lambda s: s.active_instruction == "put the strawberry in the bowl"
        ),
        10.0,
    )
    # a subscriber that joins later still receives the active instruction (transient local)
    late = []
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    qos = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    robot.node.create_subscription(String, "/instruction", late.append, qos)
    assert spin_until(executor, lambda: len(late) == 1, 10.0)
    assert late[0].data == "put the strawberry in the bowl"


def test_non_utf8_bytes_arrive_as_replacement_characters():
    """Why the node refuses U+FFFD: rclpy decodes invalid UTF-8 with errors='replace'."""
    from rclpy.serialization import deserialize_message, serialize_message

    from rynnvla_msgs.srv import SetInstruction

    raw = bytearray(serialize_message(SetInstruction.Request(instruction="put AB")))
    index = raw.index(b"AB")
    raw[index : index + 2] = b"\xff\xfe"
    decoded = deserialize_message(bytes(raw), SetInstruction.Request)
    assert "\ufffd" in decoded.instruction


def test_stop_holds_and_enable_output_resumes(active, robot, executor, spin_until, call):
    from std_srvs.srv import SetBool, Trigger

    active()
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    response = call(Trigger, "/rynnvla_policy/stop", Trigger.Request())
    assert response.success and "holding position" in response.message
    assert spin_until(executor, lambda: len(robot.rec.trajectories[-1][1].points) == 1, 5.0)
    np.testing.assert_allclose(robot.rec.trajectories[-1][1].points[0].positions, robot.state)
    assert spin_until(
        executor,
        lambda: robot.status_where(
            lambda s: s.control_state_label == "holding" and not s.output_enabled
        ),
        10.0,
    )
    count = len(robot.rec.trajectories)
    spin_until(executor, lambda: False, 1.0)
    assert len(robot.rec.trajectories) == count  # stopped: nothing sent
    response = call(SetBool, "/rynnvla_policy/enable_output", SetBool.Request(data=True))
    assert response.success
    assert spin_until(executor, lambda: len(robot.rec.trajectories) > count, 30.0)
    assert len(robot.rec.trajectories[-1][1].points) == 20


def test_dry_run_publishes_chunks_but_commands_nothing(active, robot, executor, spin_until, call):
    from std_srvs.srv import SetBool

    active(output_enabled=False)
    assert spin_until(executor, lambda: len(robot.rec.chunks) >= 2, 30.0)
    assert robot.rec.trajectories == []
    assert spin_until(
        executor,
        lambda: robot.status_where(
            lambda s: s.control_state_label == "running" and not s.output_enabled
        ),
        10.0,
    )
    call(SetBool, "/rynnvla_policy/enable_output", SetBool.Request(data=True))
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    # disabling again holds first, then goes quiet
    call(SetBool, "/rynnvla_policy/enable_output", SetBool.Request(data=False))
    assert spin_until(executor, lambda: len(robot.rec.trajectories[-1][1].points) == 1, 5.0)


def test_reset_service(active, robot, executor, spin_until, call):
    from std_srvs.srv import Trigger

    node = active()
    assert spin_until(executor, lambda: len(robot.rec.chunks) >= 1, 30.0)
    response = call(Trigger, "/rynnvla_policy/reset", Trigger.Request())
    assert response.success and "cleared" in response.message
    before = len(robot.rec.chunks)
    assert spin_until(executor, lambda: len(robot.rec.chunks) > before, 30.0)
    assert not node.policy_services.take_reset_request()  # the worker consumed it
