"""Faults over DDS: stale and bad inputs, contract mismatch, invalid parameters."""

from __future__ import annotations

import array

import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn

pytestmark = pytest.mark.ros


def start(node, robot, executor):
    executor.add_node(node)
    executor.add_node(robot.node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def test_stale_camera_holds_then_recovers(make_node, robot, executor, spin_until):
    node = make_node(camera_max_age_s=[0.3, 0.3])
    start(node, robot, executor)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    robot.cameras_on["wrist"] = False
    assert spin_until(
        executor, lambda: robot.status_where(lambda s: s.control_state_label == "stale"), 10.0
    )
    status = robot.last_status()
    assert list(status.stale_streams) == ["wrist"]
    assert "wrist: last sample" in status.last_error and status.stale_inputs > 0
    hold = robot.rec.trajectories[-1][1]
    assert len(hold.points) == 1
    np.testing.assert_allclose(hold.points[0].positions, robot.state)
    count = len(robot.rec.trajectories)
    spin_until(executor, lambda: False, 1.0)
    assert len(robot.rec.trajectories) == count  # holding: no new chunk while stale
    robot.cameras_on["wrist"] = True
    assert spin_until(executor, lambda: len(robot.rec.trajectories) > count, 30.0)
    assert len(robot.rec.trajectories[-1][1].points) == 20
    assert spin_until(
        executor, lambda: robot.status_where(lambda s: s.control_state_label == "running"), 10.0
    )
    assert list(robot.last_status().stale_streams) == []


def _bad_encoding(robot):
    def make(stamp):
        msg = robot.frame(stamp)
        msg.encoding = "32FC1"
        return msg

    return make


def _size_mismatch(robot):
    def make(stamp):
        msg = robot.frame(stamp)
        msg.height = msg.height * 2  # claims more rows than the data holds
        return msg

    return make


def _truncated(robot):
    def make(stamp):
        msg = robot.frame(stamp)
        msg.data = array.array("B", bytes(msg.data)[:1000])
        return msg

    return make


def _nan_state(robot):
    def make(stamp):
        msg = robot.joint_msg(stamp)
        msg.position = [
            np.nan if n == "elbow_flex" else p for n, p in zip(msg.name, msg.position, strict=True)
        ]
        return msg

    return make


def _missing_joint(robot):
    def make(stamp):
        msg = robot.joint_msg(stamp)
        keep = [i for i, n in enumerate(msg.name) if n != "gripper"]
        msg.name = [msg.name[i] for i in keep]
        msg.position = [msg.position[i] for i in keep]
        return msg

    return make


BAD_INPUTS = {
    "wrong encoding": ("front", _bad_encoding, "unsupported image encoding '32FC1'"),
    "size mismatch": ("wrist", _size_mismatch, "(truncated data)"),
    "truncated data": ("front", _truncated, "got 1000 (truncated data)"),
    "NaN state": ("joints", _nan_state, "non-finite positions for ['elbow_flex']"),
    "missing joints": ("joints", _missing_joint, "missing joints ['gripper']"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_are_dropped_reported_and_survived(case, make_node, robot, executor, spin_until):
    stream, factory, fragment = BAD_INPUTS[case]
    node = make_node(camera_max_age_s=[0.3, 0.3], joint_states_max_age_s=0.3)
    start(node, robot, executor)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    if stream == "joints":
        robot.joint_override = factory(robot)
    else:
        robot.image_override[stream] = factory(robot)
    assert spin_until(
        executor,
        lambda: robot.status_where(
            lambda s: (
                s.dropped_inputs > 0
                and fragment in s.last_error
                and s.control_state_label == "stale"
            )
        ),
        10.0,
    ), robot.last_status()
    # holding at the last good measured position
    assert len(robot.rec.trajectories[-1][1].points) == 1
    robot.joint_override = None
    robot.image_override.clear()
    count = len(robot.rec.trajectories)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) > count, 30.0)
    assert spin_until(
        executor, lambda: robot.status_where(lambda s: s.control_state_label == "running"), 10.0
    )


def test_contract_mismatch_fails_configure_with_a_clear_message(
    make_node, robot, executor, spin_until
):
    node = make_node(
        camera_names=["front", "side"],
        camera_topics=["/camera/front/image_raw", "/camera/side/image_raw"],
        joint_names=["j1", "j2", "j3", "j4", "j5", "j6"],
    )
    executor.add_node(node)
    executor.add_node(robot.node)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert spin_until(executor, lambda: robot.status_where(lambda s: s.last_error), 10.0)
    status = robot.last_status()
    assert status.lifecycle_state == "unconfigured"
    assert "does not match the node parameters" in status.last_error
    assert "the checkpoint expects cameras ['front', 'wrist']" in status.last_error
    assert "the checkpoint was trained on joints" in status.last_error


def test_invalid_parameters_fail_configure_naming_them(make_node, robot, executor, spin_until):
    node = make_node(overlap_policy="average", execution_horizn=4, camera_topics=["/only_one"])
    executor.add_node(node)
    executor.add_node(robot.node)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert spin_until(executor, lambda: robot.status_where(lambda s: s.last_error), 10.0)
    text = robot.last_status().last_error
    assert "overlap_policy='average': must be one of" in text
    assert "execution_horizn=4: unknown parameter (did you mean 'execution_horizon'?)" in text
    assert "camera_topics=['/only_one']: expected 2 entries" in text
    # fixed parameters, configure again: success
    from rclpy.parameter import Parameter

    node.set_parameters(
        [
            Parameter("overlap_policy", value="blend"),
            Parameter(
                "camera_topics", value=["/camera/front/image_raw", "/camera/wrist/image_raw"]
            ),
        ]
    )
    node.undeclare_parameter("execution_horizn")
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS


def test_missing_checkpoint_fails_configure(make_node, robot, executor, spin_until, tmp_path):
    node = make_node(checkpoint_path=str(tmp_path / "nowhere"))
    executor.add_node(node)
    executor.add_node(robot.node)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert spin_until(executor, lambda: robot.status_where(lambda s: s.last_error), 10.0)
    assert "nowhere" in robot.last_status().last_error


def test_inference_failure_holds_and_recovers(make_node, robot, executor, spin_until):
    node = make_node()
    start(node, robot, executor)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    runner = node.runner
    real_infer = runner.infer
    failures = []

    def failing(observation):
        # a real failure of the real model: an observation it cannot take (images of size 0)
        bad = type(observation)(
            images={k: v[:0] for k, v in observation.images.items()},
            state=observation.state,
            instruction=observation.instruction,
        )
        failures.append(1)
        return real_infer(bad)

    runner.infer = failing
    assert spin_until(
        executor, lambda: robot.status_where(lambda s: s.control_state_label == "error"), 30.0
    )
    assert "inference failed" in robot.last_status().last_error
    assert len(robot.rec.trajectories[-1][1].points) == 1  # holding
    runner.infer = real_infer
    assert spin_until(
        executor, lambda: robot.status_where(lambda s: s.control_state_label == "running"), 30.0
    )
