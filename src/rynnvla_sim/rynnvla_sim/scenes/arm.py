"""MJCF of a 5-joint arm + 1-DoF parallel gripper with the LeRobot SO-100/SO-101 joint layout.

Geometry is written here from primitive shapes (no meshes), sized like an SO-100:
shoulder axis 9 cm above the table, 12.5 cm upper arm, 14 cm forearm, 9.2 cm from the wrist
flex axis to the tool centre point (TCP) between the fingertips.

Frames: at all-zero joint angles the arm points straight up (+z). shoulder_lift, elbow_flex and
wrist_flex rotate about +y (positive leans the arm towards +x, the workspace). The gripper frame
(and the `tcp` site) has z = approach direction (out of the fingers), y = finger closing axis,
x = palm normal.

The gripper joint is a hinge (radians, 0 = closed, like the SO-100 jaw servo) that drives two
sliding fingers through equality constraints, so the state stays in radians while the fingers
stay parallel (robust grasps).
"""

from __future__ import annotations

import numpy as np

from rynnvla_policy.core.joints import SO100_JOINT_NAMES

JOINT_NAMES: tuple[str, ...] = SO100_JOINT_NAMES  # the simulated arm has the SO-100 layout

# Joint position limits (rad), in JOINT_NAMES order. Mechanical ranges of an SO-100 class arm.
JOINT_LIMITS = np.array(
    [
        [-1.92, 1.92],  # shoulder_pan
        [-1.75, 1.75],  # shoulder_lift
        [-1.20, 2.90],  # elbow_flex
        [-1.90, 1.90],  # wrist_flex
        [-2.90, 2.90],  # wrist_roll
        [0.00, 1.75],  # gripper: 0 closed, 1.75 fully open (7 cm between the fingers)
    ]
)
# Feetech STS3215 (the SO-100 servo) no-load speed is ~4.7 rad/s at 7.4 V; the loaded
# shoulder and elbow get a margin, as real drivers configure.
VELOCITY_LIMITS = np.array([4.0, 4.0, 4.0, 4.7, 4.7, 4.7])
# Resting pose: gripper above the workspace, pointing down, half open.
HOME_QPOS = np.array([0.0, -0.35, 2.05, 1.45, 0.0, 0.9])

UPPER_ARM_LENGTH = 0.125
FOREARM_LENGTH = 0.14
SHOULDER_HEIGHT = 0.09
# Finger slide (m) per gripper radian; 1.75 rad -> 3.5 cm per finger.
FINGER_PER_RAD = 0.02
PALM_HALF_HEIGHT = 0.012
FINGER_HALF_LENGTH = 0.025
TCP_OFFSET = 2 * PALM_HALF_HEIGHT + 0.038  # from the gripper base frame along +z

ARM_RGBA = "0.95 0.6 0.1 1"
SERVO_RGBA = "0.12 0.12 0.12 1"


def arm_defaults_xml() -> str:
    """<default> classes for the arm: joints, actuators, link and finger contacts."""
    return f"""
    <default class="arm">
      <joint armature="0.02" damping="0.1" frictionloss="0.02" limited="true"/>
      <position kp="60" kv="3" forcerange="-3 3" ctrllimited="true"/>
      <geom contype="1" conaffinity="1" condim="3" friction="0.8 0.02 0.001"
            rgba="{ARM_RGBA}" density="400"/>
      <default class="servo">
        <geom rgba="{SERVO_RGBA}"/>
      </default>
      <default class="finger">
        <geom condim="4" friction="1.5 0.02 0.002" solref="0.004 1" solimp="0.95 0.99 0.001"
              rgba="{SERVO_RGBA}" density="1000"/>
        <joint armature="0.005" damping="0.5" frictionloss="0"/>
      </default>
    </default>
    """


def arm_body_xml(joint_names: tuple[str, ...], base_pos: tuple[float, float, float]) -> str:
    """The kinematic tree of the arm, mounted at `base_pos` on the table."""
    pan, lift, elbow, wflex, wroll, grip = joint_names
    lim = {
        name: f"{lo:.4f} {hi:.4f}" for name, (lo, hi) in zip(joint_names, JOINT_LIMITS, strict=True)
    }
    bx, by, bz = base_pos
    return f"""
    <body name="arm_base" pos="{bx} {by} {bz}" childclass="arm">
      <geom name="base_foot" type="cylinder" size="0.05 0.006" pos="0 0 0.006"/>
      <geom name="base_servo" class="servo" type="box" size="0.02 0.025 0.022" pos="0 0 0.034"/>
      <body name="shoulder" pos="0 0 0.056">
        <joint name="{pan}" axis="0 0 1" range="{lim[pan]}"/>
        <geom name="shoulder_yoke" type="box" size="0.022 0.03 0.017" pos="0 0 0.017"/>
        <body name="upper_arm" pos="0 0 {SHOULDER_HEIGHT - 0.056:.4f}">
          <joint name="{lift}" axis="0 1 0" range="{lim[lift]}"/>
          <geom name="shoulder_servo" class="servo" type="box" size="0.02 0.024 0.02"/>
          <geom name="upper_arm_link" type="capsule" size="0.016"
                fromto="0 0 0.02 0 0 {UPPER_ARM_LENGTH - 0.02:.4f}"/>
          <body name="forearm" pos="0 0 {UPPER_ARM_LENGTH}">
            <joint name="{elbow}" axis="0 1 0" range="{lim[elbow]}"/>
            <geom name="elbow_servo" class="servo" type="box" size="0.02 0.022 0.02"/>
            <geom name="forearm_link" type="capsule" size="0.014"
                  fromto="0 0 0.02 0 0 {FOREARM_LENGTH - 0.018:.4f}"/>
            <body name="wrist" pos="0 0 {FOREARM_LENGTH}">
              <joint name="{wflex}" axis="0 1 0" range="{lim[wflex]}"/>
              <geom name="wrist_servo" class="servo" type="box" size="0.018 0.02 0.018"
                    pos="0 0 0.012"/>
              <body name="gripper_base" pos="0 0 0.03">
                <joint name="{wroll}" axis="0 0 1" range="{lim[wroll]}"/>
                {_gripper_xml(grip, lim[grip])}
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>
    """


def _gripper_xml(grip_joint: str, grip_range: str) -> str:
    finger_range = f"0 {FINGER_PER_RAD * JOINT_LIMITS[5, 1]:.4f}"
    fz = 2 * PALM_HALF_HEIGHT + FINGER_HALF_LENGTH
    return f"""
                <geom name="palm" type="box" size="0.02 0.046 {PALM_HALF_HEIGHT}"
                      pos="0 0 {PALM_HALF_HEIGHT}"/>
                <site name="tcp" pos="0 0 {TCP_OFFSET:.4f}" size="0.004" rgba="1 0 0 0"/>
                <camera name="wrist" pos="-0.042 0 0.018" fovy="75" mode="fixed"
                        xyaxes="0 -1 0 -0.9659 0 0.2588"/>
                <geom name="wrist_cam_body" class="servo" type="box" size="0.011 0.012 0.009"
                      pos="-0.031 0 0.008"/>
                <body name="gripper_crank" pos="0 0 {PALM_HALF_HEIGHT}">
                  <joint name="{grip_joint}" axis="1 0 0" range="{grip_range}" armature="0.005"
                         damping="0.05"/>
                  <inertial pos="0 0 0" mass="0.005" diaginertia="1e-6 1e-6 1e-6"/>
                </body>
                <body name="finger_left" pos="0 0 0">
                  <joint name="finger_left_slide" class="finger" type="slide" axis="0 1 0"
                         range="{finger_range}"/>
                  <geom name="finger_left_pad" class="finger" type="box"
                        size="0.012 0.004 {FINGER_HALF_LENGTH}" pos="0 0.004 {fz:.4f}"/>
                </body>
                <body name="finger_right" pos="0 0 0">
                  <joint name="finger_right_slide" class="finger" type="slide" axis="0 -1 0"
                         range="{finger_range}"/>
                  <geom name="finger_right_pad" class="finger" type="box"
                        size="0.012 0.004 {FINGER_HALF_LENGTH}" pos="0 -0.004 {fz:.4f}"/>
                </body>"""


def arm_extras_xml(joint_names: tuple[str, ...]) -> str:
    """Finger coupling, contact exclusions and the six position actuators."""
    grip = joint_names[5]
    actuators = "\n".join(
        f'      <position name="{name}" joint="{name}" class="arm" ctrlrange="{lo:.4f} {hi:.4f}"/>'
        for name, (lo, hi) in zip(joint_names[:5], JOINT_LIMITS[:5], strict=True)
    )
    # The jaw servo: weaker than the arm servos; 0.5 N m on the crank ~ 12 N per finger.
    g_lo, g_hi = JOINT_LIMITS[5]
    return f"""
  <equality>
    <joint joint1="finger_left_slide" joint2="{grip}" polycoef="0 {FINGER_PER_RAD} 0 0 0"
           solref="0.004 1"/>
    <joint joint1="finger_right_slide" joint2="{grip}" polycoef="0 {FINGER_PER_RAD} 0 0 0"
           solref="0.004 1"/>
  </equality>
  <contact>
    <exclude body1="finger_left" body2="finger_right"/>
    <exclude body1="gripper_base" body2="finger_left"/>
    <exclude body1="gripper_base" body2="finger_right"/>
    <exclude body1="arm_base" body2="upper_arm"/>
    <!-- MuJoCo filters parent-child contacts except with bodies welded to the world, which
         the base is: without this the yoke rubs on the base servo and kicks the pan joint -->
    <exclude body1="arm_base" body2="shoulder"/>
  </contact>
  <actuator>
{actuators}
      <position name="{grip}" joint="{grip}" class="arm" kp="2.0" kv="0.2"
                forcerange="-0.5 0.5" ctrlrange="{g_lo:.4f} {g_hi:.4f}"/>
  </actuator>
"""
