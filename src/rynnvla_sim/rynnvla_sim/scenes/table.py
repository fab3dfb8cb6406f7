"""The table-top scene: table, arm, all task objects and distractors, lights and cameras.

One model holds every object of every task; objects a task does not use are parked under the
table (hidden from every camera by the table top), floating with contacts off so they cost no
contact physics (see `ArmSimEnv._set_parked`). Switching task at reset therefore needs no
recompilation, and the renderers (GL contexts) are created once.

Rendering is kept cheap for Mesa's software rasteriser: one light, no shadows, no
reflections, no skybox, no textures, no multisampling and an offscreen buffer of the image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rynnvla_sim.scenes import arm, objects

TABLE_TOP_Z = 0.0
FLOOR_Z = -0.76
ARM_BASE_POS = (0.0, 0.0, TABLE_TOP_Z)
# High and steep (about 63 degrees down) so the object workspace (radius 0.13-0.23 m from the
# base) fills the middle half of the image: a shallower view squeezed the radial direction into
# ~1.5 token rows at the tiny preset's 64 px, and policies could not tell reach depth.
FRONT_CAMERA_POS = np.array([0.30, 0.0, 0.40])
FRONT_CAMERA_TARGET = np.array([0.10, 0.0, 0.0])
FRONT_CAMERA_FOVY = 52.0


@dataclass(frozen=True)
class SceneObjects:
    """Every free object in the scene and the container geometry of the targets."""

    specs: dict[str, objects.ObjectSpec]
    containers: dict[str, objects.ContainerGeometry]
    distractor_names: tuple[str, ...]
    park_positions: dict[str, np.ndarray]  # name -> (3,) position under the table (floating)


def scene_objects() -> SceneObjects:
    bowl, bowl_geometry = objects.bowl()
    holder, holder_geometry = objects.pen_holder()
    task_objects = [
        objects.block(),
        objects.plate(),
        objects.strawberry(),
        bowl,
        objects.pen(),
        holder,
    ]
    extras = objects.distractors()
    specs = {spec.name: spec for spec in task_objects + extras}
    park = {}
    for i, spec in enumerate(specs.values()):
        # A grid on the floor under the table top, 15 cm apart.
        x, y = 0.0 + 0.15 * (i % 4), -0.25 + 0.17 * (i // 4)
        park[spec.name] = np.array([x, y, FLOOR_Z + spec.rest_z + 0.001])
    return SceneObjects(
        specs=specs,
        containers={bowl.name: bowl_geometry, holder.name: holder_geometry},
        distractor_names=tuple(spec.name for spec in extras),
        park_positions=park,
    )


def look_at_xyaxes(pos: np.ndarray, target: np.ndarray) -> str:
    """MJCF `xyaxes` for a camera at `pos` looking at `target` with world +z up in the image."""
    forward = target - pos
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return " ".join(f"{v:.5f}" for v in (*right, *up))


def build_scene_xml(
    joint_names: tuple[str, ...], width: int, height: int, timestep: float
) -> tuple[str, SceneObjects]:
    """MJCF text of the whole scene, and the object registry that goes with it."""
    scene = scene_objects()
    object_bodies = "".join(spec.xml for spec in scene.specs.values())
    front_axes = look_at_xyaxes(FRONT_CAMERA_POS, FRONT_CAMERA_TARGET)
    fx, fy, fz = FRONT_CAMERA_POS
    xml = f"""
<mujoco model="rynnvla_so_arm_table">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <quality shadowsize="0" offsamples="0" numslices="16" numstacks="8" numquads="1"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
    <map znear="0.01" zfar="4"/>
  </visual>
  <default>
    {arm.arm_defaults_xml()}
    {objects.object_defaults_xml()}
  </default>
  <worldbody>
    <light name="top" directional="true" pos="0 0 1.5" dir="0.3 0.2 -1" castshadow="false"
           diffuse="0.6 0.6 0.6" specular="0 0 0"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 {FLOOR_Z}" rgba="0.45 0.42 0.4 1"/>
    <geom name="wall_back" type="plane" size="2.5 1.2 0.1" pos="-1.4 0 0.44" zaxis="1 0 0"
          rgba="0.78 0.8 0.82 1"/>
    <geom name="wall_front" type="plane" size="2.5 1.2 0.1" pos="1.8 0 0.44" zaxis="-1 0 0"
          rgba="0.78 0.8 0.82 1"/>
    <geom name="wall_left" type="plane" size="2.5 1.2 0.1" pos="0 1.6 0.44" zaxis="0 -1 0"
          rgba="0.74 0.77 0.8 1"/>
    <geom name="wall_right" type="plane" size="2.5 1.2 0.1" pos="0 -1.6 0.44" zaxis="0 1 0"
          rgba="0.74 0.77 0.8 1"/>
    <geom name="table" type="box" size="0.42 0.5 0.02" pos="0.18 0 {TABLE_TOP_Z - 0.02}"
          rgba="0.72 0.58 0.42 1" friction="0.8 0.01 0.001"/>
    <camera name="front" pos="{fx} {fy} {fz}" xyaxes="{front_axes}" fovy="{FRONT_CAMERA_FOVY}"/>
    {arm.arm_body_xml(joint_names, ARM_BASE_POS)}
    {object_bodies}
  </worldbody>
  {arm.arm_extras_xml(joint_names)}
</mujoco>
"""
    return xml, scene
