"""MJCF of the simulated arm and its table-top scene, written in Python from primitives."""

from rynnvla_sim.scenes.arm import HOME_QPOS, JOINT_LIMITS, JOINT_NAMES, VELOCITY_LIMITS
from rynnvla_sim.scenes.table import SceneObjects, build_scene_xml

__all__ = [
    "HOME_QPOS",
    "JOINT_LIMITS",
    "JOINT_NAMES",
    "VELOCITY_LIMITS",
    "SceneObjects",
    "build_scene_xml",
]
