"""Choreography of one human-hand clip: scene appearance, object layout, hand and head motion.

A clip is a pick-and-place done by the hand: reach -> open -> descend -> close -> lift ->
carry (turning the object as the target needs, e.g. a pen upright) -> lower -> open ->
withdraw. Everything is planned up front from a seed as keyframes, then sampled per frame.
"""

from __future__ import annotations

import colorsys
import itertools
import math
from dataclasses import dataclass

import numpy as np

from rynnvla_sim.hand import HandPoser, HandScene
from rynnvla_sim.motion import min_jerk, slerp_rotation
from rynnvla_sim.scenes.objects import PEN_HALF_LENGTH

TABLE_REGION = ((0.3, 0.56), (-0.2, 0.2))  # x and y ranges (m) where objects are laid out
REST_POSITION = np.array([0.2, -0.24, 0.14])  # right hand resting near the body
HEAD_TARGET = np.array([0.42, 0.0, 0.0])


@dataclass(frozen=True)
class ClipFamily:
    family: str
    object_name: str
    target_name: str
    preposition: str  # "on" / "in"
    target_words: str


FAMILIES = (
    ClipFamily("block_to_plate", "green_block", "plate", "on", "plate"),
    ClipFamily("block_to_bowl", "green_block", "bowl", "in", "bowl"),
    ClipFamily("strawberry_to_bowl", "strawberry", "bowl", "in", "bowl"),
    ClipFamily("strawberry_to_plate", "strawberry", "plate", "on", "plate"),
    ClipFamily("pen_to_holder", "pen", "pen_holder", "in", "pen holder"),
)
CAPTIONS = (
    "put the {obj} {prep} the {tgt}",
    "pick up the {obj} and put it {prep} the {tgt}",
    "place the {obj} {prep} the {tgt}",
    "move the {obj} {prep2} the {tgt}",
)
BLOCK_COLOURS = {
    "green": (0.15, 0.75, 0.2),
    "blue": (0.15, 0.35, 0.9),
    "white": (0.92, 0.92, 0.9),
    "pink": (0.95, 0.5, 0.7),
    "cyan": (0.2, 0.8, 0.85),
}
SKIN_TONES = (
    (0.96, 0.8, 0.69),
    (0.89, 0.69, 0.55),
    (0.78, 0.57, 0.44),
    (0.62, 0.43, 0.31),
    (0.45, 0.3, 0.21),
    (0.33, 0.22, 0.16),
)


@dataclass(frozen=True)
class HandKey:
    t: float
    pos: np.ndarray  # (3,) palm centre, world
    rot: np.ndarray  # (3, 3) hand frame, world
    curl: float  # 0 open .. 1 closed


@dataclass(frozen=True)
class ClipPlan:
    family: ClipFamily
    caption: str
    duration_s: float
    keys: tuple[HandKey, ...]
    grasp_t: float  # object rigidly follows the hand from here ...
    release_t: float  # ... until here
    object_start: tuple[np.ndarray, np.ndarray]  # (pos (3,), rot (3, 3))
    object_in_hand: tuple[np.ndarray, np.ndarray]  # pose relative to the hand
    object_end: tuple[np.ndarray, np.ndarray]
    static_objects: dict[str, tuple[np.ndarray, np.ndarray]]  # target and distractors
    head_base: np.ndarray  # (3,)
    head_wobble: np.ndarray  # (3, 3): amplitude, frequency, phase per axis


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def look_at_rotation(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-body rotation (3, 3): looking along -z at `target`, image up towards +z world."""
    forward = (target - pos) / np.linalg.norm(target - pos)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)


# ---- appearance ----------------------------------------------------------------------------


def _random_rgb(rng, sat: tuple[float, float], val: tuple[float, float]) -> tuple[float, ...]:
    return colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))


def _paint_body(model, body: str, rgb) -> None:
    body_id = model.body(body).id
    for geom in np.flatnonzero(model.geom_bodyid == body_id):
        if model.geom_group[geom] != 3:  # hidden collision geoms stay hidden
            model.geom_rgba[geom, :3] = rgb


def randomize_appearance(scene: HandScene, rng: np.random.Generator) -> str:
    """New colours and light for a clip; returns the block's colour word for the caption."""
    model = scene.model
    model.geom_rgba[model.geom("table").id, :3] = _random_rgb(rng, (0.05, 0.5), (0.4, 0.9))
    wall = _random_rgb(rng, (0.0, 0.25), (0.55, 0.95))
    for name in ("wall", "wall_left", "wall_right"):
        model.geom_rgba[model.geom(name).id, :3] = wall
    model.geom_rgba[model.geom("floor").id, :3] = _random_rgb(rng, (0.0, 0.4), (0.2, 0.6))
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))]) * rng.uniform(0.95, 1.05)
    model.geom_rgba[scene.skin_geoms, :3] = np.clip(skin, 0, 1)
    model.geom_rgba[scene.sleeve_geoms, :3] = _random_rgb(rng, (0.3, 0.9), (0.2, 0.8))
    colour = str(rng.choice(list(BLOCK_COLOURS)))
    _paint_body(model, "green_block", BLOCK_COLOURS[colour])
    _paint_body(model, "bowl", _random_rgb(rng, (0.3, 0.8), (0.5, 0.9)))
    _paint_body(model, "pen_holder", _random_rgb(rng, (0.0, 0.5), (0.1, 0.4)))
    model.light_diffuse[0] = rng.uniform(0.35, 0.8)
    direction = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), -1.0])
    model.light_dir[0] = direction / np.linalg.norm(direction)
    model.vis.headlight.ambient[:] = rng.uniform(0.2, 0.45)
    model.vis.headlight.diffuse[:] = rng.uniform(0.2, 0.5)
    return colour


# ---- layout --------------------------------------------------------------------------------


def _layout(scene: HandScene, names: list[str], rng) -> dict[str, np.ndarray]:
    """Non-overlapping table positions (x, y) for `names`."""
    placed: dict[str, np.ndarray] = {}
    for name in names:
        radius = scene.objects[name].footprint
        for _ in range(2000):
            xy = np.array([rng.uniform(*TABLE_REGION[0]), rng.uniform(*TABLE_REGION[1])])
            if all(
                np.linalg.norm(xy - other) > radius + scene.objects[o].footprint + 0.03
                for o, other in placed.items()
            ):
                placed[name] = xy
                break
        else:
            raise RuntimeError(f"could not lay out {name!r} on the table")
    return placed


def _resting(scene: HandScene, name: str, xy: np.ndarray, yaw: float):
    return np.array([xy[0], xy[1], scene.objects[name].rest_z]), _rot_z(yaw)


# ---- hand motion ---------------------------------------------------------------------------


def _hand_rotation(yaw: float, pitch: float) -> np.ndarray:
    """Palm down, fingers towards `yaw`, tilted down by `pitch`."""
    return _rot_z(yaw) @ _rot_y(pitch)


def _grasp_pose(obj_pos, obj_rot, family: ClipFamily, rng) -> tuple[np.ndarray, np.ndarray]:
    """Hand pose that holds the object under the front of the palm, fingers away from the body."""
    body_yaw = math.atan2(obj_rot[1, 0], obj_rot[0, 0])
    if family.object_name == "pen":  # fingers across the pen
        options = [body_yaw + math.pi / 2, body_yaw - math.pi / 2]
    else:
        options = [body_yaw + k * math.pi / 2 for k in range(4)]
    away = math.atan2(obj_pos[1] - REST_POSITION[1], obj_pos[0] - REST_POSITION[0])
    yaw = min(options, key=lambda a: abs((a - away + math.pi) % (2 * math.pi) - math.pi))
    rot = _hand_rotation(yaw, rng.uniform(0.2, 0.45))
    pos = obj_pos + rot @ np.array([-0.035, 0.0, 0.0]) + np.array([0.0, 0.0, 0.035])
    return pos, rot


def _place_pose(scene: HandScene, family: ClipFamily, target_pos, obj_rot, rng):
    """Where the object ends (resting on / in the target) and its rotation."""
    name, target = family.object_name, family.target_name
    if name == "pen":
        geometry = scene.containers[target]
        lean, azimuth = rng.uniform(0.08, 0.2), rng.uniform(-math.pi, math.pi)
        rot = _rot_z(azimuth) @ _rot_y(-(math.pi / 2 - lean))  # pen axis (body x) up, leaning
        axis = rot[:, 0]
        pos = target_pos + PEN_HALF_LENGTH * axis
        pos[2] = target_pos[2] + geometry.floor_top + PEN_HALF_LENGTH * axis[2] + 0.002
        return pos, rot
    rot = obj_rot @ _rot_z(rng.uniform(-0.5, 0.5))
    offset = np.array([*rng.uniform(-0.01, 0.01, 2), 0.0])
    if target == "plate":
        height = 0.01 + scene.objects[name].rest_z
    else:
        height = scene.containers[target].floor_top + scene.objects[name].rest_z + 0.001
    return target_pos + offset + np.array([0.0, 0.0, height]), rot


def plan_clip(scene: HandScene, rng: np.random.Generator, index: int) -> ClipPlan:
    """Clip `index` (families cycle with the index, so any run is balanced)."""
    family = FAMILIES[index % len(FAMILIES)]
    colour = randomize_appearance(scene, rng)
    distractors = ["red_cube", "purple_block", "yellow_can", "orange_ball"]
    rng.shuffle(distractors)
    static = [family.target_name, *distractors[: rng.integers(0, 4)]]
    layout = _layout(scene, [family.object_name, *static], rng)
    obj_start = _resting(
        scene, family.object_name, layout[family.object_name], rng.uniform(-math.pi, math.pi)
    )
    statics = {n: _resting(scene, n, layout[n], rng.uniform(-math.pi, math.pi)) for n in static}

    grasp_pos, grasp_rot = _grasp_pose(*obj_start, family, rng)
    in_hand = (grasp_rot.T @ (obj_start[0] - grasp_pos), grasp_rot.T @ obj_start[1])
    end_pos, end_rot = _place_pose(scene, family, statics[family.target_name][0], obj_start[1], rng)
    place_rot = end_rot @ in_hand[1].T
    place_pos = end_pos - place_rot @ in_hand[0]
    keys, grasp_t, release_t = _keyframes(grasp_pos, grasp_rot, place_pos, place_rot, rng)
    object_words = f"{colour} block" if family.object_name == "green_block" else family.object_name
    template = CAPTIONS[rng.integers(len(CAPTIONS))]
    caption = template.format(
        obj=object_words,
        prep=family.preposition,
        prep2="onto" if family.preposition == "on" else "into",
        tgt=family.target_words,
    )
    head_base = np.array(
        [rng.uniform(0.0, 0.06), rng.uniform(-0.06, 0.06), rng.uniform(0.38, 0.46)]
    )
    wobble = np.stack(
        [rng.uniform(0.003, 0.012, 3), rng.uniform(0.2, 0.8, 3), rng.uniform(0, 2 * math.pi, 3)]
    )
    return ClipPlan(
        family=family,
        caption=caption,
        duration_s=keys[-1].t,
        keys=tuple(keys),
        grasp_t=grasp_t,
        release_t=release_t,
        object_start=obj_start,
        object_in_hand=in_hand,
        object_end=(end_pos, end_rot),
        static_objects=statics,
        head_base=head_base,
        head_wobble=wobble,
    )


def _keyframes(grasp_pos, grasp_rot, place_pos, place_rot, rng):
    speed = rng.uniform(0.8, 1.25)
    rest_rot = _hand_rotation(rng.uniform(0.5, 1.0), 0.2)
    rest = REST_POSITION + rng.uniform(-0.03, 0.03, 3)
    above_grasp = grasp_pos + np.array([0.0, 0.0, rng.uniform(0.06, 0.1)])
    above_place = place_pos + np.array([0.0, 0.0, rng.uniform(0.07, 0.11)])
    steps = [  # (duration before this key, pos, rot, curl)
        (0.0, rest, rest_rot, rng.uniform(0.3, 0.5)),
        (rng.uniform(0.8, 1.2), above_grasp, grasp_rot, 0.0),
        (rng.uniform(0.45, 0.7), grasp_pos, grasp_rot, 0.0),
        (rng.uniform(0.3, 0.45), grasp_pos, grasp_rot, 0.75),
        (rng.uniform(0.4, 0.6), above_grasp, grasp_rot, 0.75),
        (rng.uniform(0.8, 1.3), above_place, place_rot, 0.75),
        (rng.uniform(0.45, 0.7), place_pos, place_rot, 0.75),
        (rng.uniform(0.25, 0.4), place_pos, place_rot, 0.05),
        (rng.uniform(0.4, 0.6), above_place, place_rot, 0.1),
        (rng.uniform(0.6, 0.9), rest, rest_rot, 0.4),
    ]
    keys, t = [], 0.0
    for duration, pos, rot, curl in steps:
        t += duration * speed
        keys.append(HandKey(t, np.asarray(pos, dtype=float), rot, curl))
    return keys, keys[3].t, keys[6].t


def hand_at(plan: ClipPlan, t: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Hand pose and curl at time `t` (min-jerk between keyframes)."""
    keys = plan.keys
    if t <= keys[0].t:
        return keys[0].pos, keys[0].rot, keys[0].curl
    for a, b in itertools.pairwise(keys):
        if t <= b.t:
            h = min_jerk((t - a.t) / (b.t - a.t))
            return (
                a.pos + h * (b.pos - a.pos),
                slerp_rotation(a.rot, b.rot, h),
                a.curl + h * (b.curl - a.curl),
            )
    return keys[-1].pos, keys[-1].rot, keys[-1].curl


def pose_frame(poser: HandPoser, plan: ClipPlan, t: float) -> None:
    """Pose hand, held object, static objects and head camera for time `t`."""
    pos, rot, curl = hand_at(plan, t)
    poser.set_hand(pos, rot, curl)
    name = plan.family.object_name
    if t < plan.grasp_t:
        poser.set_object(name, *plan.object_start)
    elif t < plan.release_t:
        rel_pos, rel_rot = plan.object_in_hand
        poser.set_object(name, pos + rot @ rel_pos, rot @ rel_rot)
    else:
        poser.set_object(name, *plan.object_end)
    for other, pose in plan.static_objects.items():
        poser.set_object(other, *pose)
    amplitude, frequency, phase = plan.head_wobble
    head = plan.head_base + amplitude * np.sin(2 * math.pi * frequency * t + phase)
    # People glance towards their hand: the gaze drifts a quarter of the way to it.
    gaze = HEAD_TARGET + 0.25 * (np.array([pos[0], pos[1], 0.0]) - HEAD_TARGET)
    poser.set_head(head, look_at_rotation(head, gaze))
    poser.update()


def park_unused(poser: HandPoser, plan: ClipPlan) -> None:
    """Objects not in this clip go under the table, out of view."""
    used = {plan.family.object_name, *plan.static_objects}
    for i, name in enumerate(n for n in poser.scene.objects if n not in used):
        poser.set_object(name, np.array([0.3 + 0.12 * i, 0.0, -0.7]), np.eye(3))
