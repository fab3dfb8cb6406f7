"""A free-floating human hand in a table-top scene, seen from a head-mounted camera.

A different embodiment from the arm, for the ego-centric video stages: a palm with four
three-segment fingers and a two-segment thumb on a forearm, moved kinematically (mocap). The
scene is posed, never simulated: objects follow the hand rigidly while held, so a clip costs
little more than its rendering. Appearance (table, walls, skin, sleeve, object colours, light)
is changed per clip through the model's colour and light arrays, without recompiling.

Hand frame: x = finger direction, y = thumb side, z = back of the hand (palm faces -z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from rynnvla_sim.scenes import objects as scene_objects

HEAD_FOVY_DEG = 62.0
FOREARM_LENGTH = 0.45
# The forearm runs from the wrist towards the (unseen) elbow and shoulder of a right arm.
SHOULDER = np.array([-0.05, -0.2, 0.22])
PALM_HALF = (0.045, 0.04, 0.012)
WRIST_OFFSET = np.array([-PALM_HALF[0], 0.0, 0.0])  # wrist keypoint in the hand frame
# Finger bases on the knuckle line (y) and phalanx lengths (m), index to little finger.
FINGERS = (
    ("index", 0.03, (0.042, 0.025, 0.02)),
    ("middle", 0.01, (0.046, 0.028, 0.021)),
    ("ring", -0.01, (0.043, 0.026, 0.02)),
    ("little", -0.03, (0.034, 0.02, 0.018)),
)
CURL_MAX = (1.25, 1.35, 0.9)  # rad per finger joint at curl = 1
THUMB_CURL_MAX = (0.7, 0.9)


@dataclass(frozen=True)
class HandScene:
    """Compiled hand scene and the ids used to pose it."""

    model: mujoco.MjModel
    objects: dict[str, scene_objects.ObjectSpec]
    containers: dict[str, scene_objects.ContainerGeometry]
    finger_qpos: np.ndarray  # (n,) qpos addresses of the finger joints, curl order
    finger_curl_max: np.ndarray  # (n,) rad at full curl
    skin_geoms: np.ndarray
    sleeve_geoms: np.ndarray


def _finger_xml(name: str, y: float, lengths: tuple[float, ...]) -> str:
    """Nested phalanges that curl about +y (towards the palm side, -z)."""
    xml, close = "", ""
    x = PALM_HALF[0]
    for i, length in enumerate(lengths):
        radius = 0.0085 - 0.0012 * i
        xml += (
            f'<body name="{name}{i}" pos="{x:.4f} {y if i == 0 else 0:.4f} 0">'
            f'<joint name="{name}{i}_flex" axis="0 1 0" range="-0.2 1.6"/>'
            f'<geom class="skin" type="capsule" size="{radius:.4f}" '
            f'fromto="0 0 0 {length - radius:.4f} 0 0"/>'
        )
        close += "</body>"
        x = length
    return xml + close


def _thumb_xml() -> str:
    return (
        '<body name="thumb0" pos="-0.015 0.04 -0.006" euler="0.5 0.35 0.9">'
        '<joint name="thumb0_flex" axis="0 0.3 1" range="-0.2 1.2"/>'
        '<geom class="skin" type="capsule" size="0.0095" fromto="0 0 0 0.038 0 0"/>'
        '<body name="thumb1" pos="0.042 0 0">'
        '<joint name="thumb1_flex" axis="0 0.3 1" range="-0.2 1.4"/>'
        '<geom class="skin" type="capsule" size="0.0085" fromto="0 0 0 0.026 0 0"/>'
        "</body></body>"
    )


def hand_scene_xml(width: int, height: int) -> tuple[str, dict, dict]:
    bowl, bowl_geometry = scene_objects.bowl()
    holder, holder_geometry = scene_objects.pen_holder()
    specs = [
        scene_objects.block(),
        scene_objects.plate(),
        scene_objects.strawberry(),
        bowl,
        scene_objects.pen(),
        holder,
        *scene_objects.distractors(),
    ]
    fingers = "".join(_finger_xml(n, y, lengths) for n, y, lengths in FINGERS)
    px, py, pz = PALM_HALF
    xml = f"""
<mujoco model="rynnvla_human_hand">
  <compiler angle="radian" autolimits="true"/>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <quality shadowsize="0" offsamples="0" numslices="12" numstacks="6" numquads="1"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
    <map znear="0.01" zfar="5"/>
  </visual>
  <default>
    {scene_objects.object_defaults_xml()}
    <default class="skin">
      <geom contype="0" conaffinity="0" rgba="0.87 0.68 0.55 1" mass="0.01"/>
    </default>
  </default>
  <worldbody>
    <light name="key" directional="true" pos="0 0 2" dir="0.3 0.2 -1" castshadow="false"
           diffuse="0.6 0.6 0.6" specular="0 0 0"/>
    <geom name="floor" type="plane" size="4 4 0.1" pos="0 0 -0.76" rgba="0.45 0.42 0.4 1"/>
    <geom name="wall" type="plane" size="3 1.5 0.1" pos="1.3 0 0.5" zaxis="-1 0 0"
          rgba="0.8 0.8 0.82 1"/>
    <geom name="wall_left" type="plane" size="3 1.5 0.1" pos="0 1.4 0.5" zaxis="0 -1 0"
          rgba="0.76 0.78 0.8 1"/>
    <geom name="wall_right" type="plane" size="3 1.5 0.1" pos="0 -1.4 0.5" zaxis="0 1 0"
          rgba="0.76 0.78 0.8 1"/>
    <geom name="table" type="box" size="0.4 0.6 0.02" pos="0.45 0 -0.02"
          rgba="0.72 0.58 0.42 1"/>
    <body name="head" mocap="true" pos="0 0 0.5">
      <camera name="head" fovy="{HEAD_FOVY_DEG}" xyaxes="1 0 0 0 1 0"/>
    </body>
    <body name="forearm" mocap="true" pos="0 -0.3 0.2">
      <geom name="sleeve" class="skin" type="capsule" size="0.029"
            fromto="0.035 0 0 {FOREARM_LENGTH} 0 0" rgba="0.2 0.3 0.6 1"/>
    </body>
    <body name="hand" mocap="true" pos="0.2 -0.2 0.15">
      <site name="wrist" pos="{WRIST_OFFSET[0]} 0 0" size="0.005" rgba="1 0 0 0"/>
      <geom name="palm" class="skin" type="box" size="{px} {py} {pz}"/>
      <geom name="wrist_skin" class="skin" type="capsule" size="0.024"
            fromto="{-px + 0.005:.3f} 0 0.002 {-px - 0.04:.3f} 0 0.004"/>
      {fingers}
      {_thumb_xml()}
    </body>
    {"".join(spec.xml for spec in specs)}
  </worldbody>
</mujoco>
"""
    return xml, {s.name: s for s in specs}, {bowl.name: bowl_geometry, holder.name: holder_geometry}


def build_hand_scene(width: int, height: int) -> HandScene:
    xml, specs, containers = hand_scene_xml(width, height)
    model = mujoco.MjModel.from_xml_string(xml)
    joints, curl_max = [], []
    for name, _, lengths in FINGERS:
        for i in range(len(lengths)):
            joints.append(model.joint(f"{name}{i}_flex").qposadr[0])
            curl_max.append(CURL_MAX[i])
    for i, angle in enumerate(THUMB_CURL_MAX):
        joints.append(model.joint(f"thumb{i}_flex").qposadr[0])
        curl_max.append(angle)
    skin = [g for g in range(model.ngeom) if _is_hand_geom(model, g)]
    return HandScene(
        model=model,
        objects=specs,
        containers=containers,
        finger_qpos=np.array(joints),
        finger_curl_max=np.array(curl_max),
        skin_geoms=np.array(skin),
        sleeve_geoms=np.array([model.geom("sleeve").id]),
    )


def _is_hand_geom(model: mujoco.MjModel, geom: int) -> bool:
    body = model.geom_bodyid[geom]
    hand = model.body("hand").id
    while body not in (0, hand):
        body = model.body_parentid[body]
    return body == hand


def quat_from_matrix(rot: np.ndarray) -> np.ndarray:
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, rot.reshape(9))
    return quat


class HandPoser:
    """Poses hand, head camera and objects of a `HandScene`, and projects world points."""

    def __init__(self, scene: HandScene) -> None:
        self.scene = scene
        self.model = scene.model
        self.data = mujoco.MjData(scene.model)
        self._hand_mocap = self.model.body("hand").mocapid[0]
        self._head_mocap = self.model.body("head").mocapid[0]
        self._forearm_mocap = self.model.body("forearm").mocapid[0]
        self._camera = self.model.camera("head").id

    def set_hand(self, pos: np.ndarray, rot: np.ndarray, curl: float) -> None:
        self.data.mocap_pos[self._hand_mocap] = pos
        self.data.mocap_quat[self._hand_mocap] = quat_from_matrix(rot)
        self.data.qpos[self.scene.finger_qpos] = (
            np.clip(curl, 0.0, 1.0) * self.scene.finger_curl_max
        )
        wrist = pos + rot @ WRIST_OFFSET
        along = SHOULDER - wrist
        along /= np.linalg.norm(along)
        side = np.cross([0.0, 0.0, 1.0], along)
        side /= np.linalg.norm(side)
        self.data.mocap_pos[self._forearm_mocap] = wrist
        self.data.mocap_quat[self._forearm_mocap] = quat_from_matrix(
            np.stack([along, side, np.cross(along, side)], axis=1)
        )

    def set_head(self, pos: np.ndarray, rot: np.ndarray) -> None:
        self.data.mocap_pos[self._head_mocap] = pos
        self.data.mocap_quat[self._head_mocap] = quat_from_matrix(rot)

    def set_object(self, name: str, pos: np.ndarray, rot: np.ndarray) -> None:
        adr = self.model.joint(f"{name}_joint").qposadr[0]
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = quat_from_matrix(rot)

    def update(self) -> None:
        """Propagate the poses (kinematics and camera/light frames only, no dynamics)."""
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def wrist_xyz(self) -> np.ndarray:
        return self.data.site("wrist").xpos.copy()  # (3,)

    def project(self, xyz: np.ndarray, width: int, height: int) -> tuple[float, float, bool]:
        """Pixel coordinates (u right, v down) of a world point in the head camera, and whether
        it lies in front of the camera inside the image."""
        cam_pos = self.data.cam_xpos[self._camera]
        cam_rot = self.data.cam_xmat[self._camera].reshape(3, 3)
        local = cam_rot.T @ (xyz - cam_pos)  # camera looks along its -z, y up
        focal = 0.5 * height / math.tan(math.radians(HEAD_FOVY_DEG) / 2)
        depth = -local[2]
        if depth <= 1e-6:
            return float("nan"), float("nan"), False
        u = width / 2 + focal * local[0] / depth
        v = height / 2 - focal * local[1] / depth
        return float(u), float(v), bool(0 <= u < width and 0 <= v < height)

    def camera_pose(self) -> list[float]:
        """Head camera pose [x, y, z, qw, qx, qy, qz] (world; camera looks along its -z)."""
        quat = quat_from_matrix(self.data.cam_xmat[self._camera].reshape(3, 3))
        return [*self.data.cam_xpos[self._camera].tolist(), *quat.tolist()]

    def intrinsics(self, width: int, height: int) -> dict[str, float]:
        focal = 0.5 * height / math.tan(math.radians(HEAD_FOVY_DEG) / 2)
        return {
            "fx": focal,
            "fy": focal,
            "cx": width / 2,
            "cy": height / 2,
            "fovy_deg": HEAD_FOVY_DEG,
        }
