"""Task registry: instructions, seeded object layouts and the geometric success conditions.

Success of an episode (see `SuccessTracker` in env.py) = the task's placement condition below
AND the object is released (no contact with any arm geom) AND it is still (small linear and
angular velocity), all holding continuously for `SUCCESS_HOLD_S`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rynnvla_sim.scenes import objects as scene_objects
from rynnvla_sim.scenes.table import SceneObjects

SUCCESS_HOLD_S = 0.3
STILL_LINEAR_SPEED = 0.03  # m/s
STILL_ANGULAR_SPEED = 0.6  # rad/s
# Polar workspace in front of the arm (radius from the shoulder axis, angle from +x).
WORKSPACE_ANGLE = (-0.95, 0.95)
LAYOUT_MARGIN = 0.025  # free space between object footprints (m)


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    instruction: str
    object_name: str  # what the arm picks up
    target_name: str  # where it goes
    object_radius: tuple[float, float]  # allowed distance of the object from the arm base (m)
    target_radius: tuple[float, float]


TASK_SPECS: dict[str, TaskSpec] = {
    spec.task_id: spec
    for spec in (
        TaskSpec(
            "block_to_plate",
            "put the green block on the plate",
            "green_block",
            "plate",
            object_radius=(0.13, 0.23),
            target_radius=(0.14, 0.22),
        ),
        TaskSpec(
            "strawberry_to_bowl",
            "put the strawberry in the bowl",
            "strawberry",
            "bowl",
            object_radius=(0.13, 0.23),
            target_radius=(0.15, 0.22),
        ),
        TaskSpec(
            "pen_to_holder",
            "put the pen in the pen holder",
            "pen",
            "pen_holder",
            object_radius=(0.14, 0.21),
            target_radius=(0.18, 0.23),
        ),
    )
}
TASKS: dict[str, str] = {task_id: spec.instruction for task_id, spec in TASK_SPECS.items()}


def get_task(task_id: str) -> TaskSpec:
    if task_id not in TASK_SPECS:
        raise ValueError(f"unknown task_id {task_id!r}; known tasks: {sorted(TASK_SPECS)}")
    return TASK_SPECS[task_id]


@dataclass(frozen=True)
class Placement:
    """Where an object starts an episode: table position and yaw."""

    x: float
    y: float
    yaw: float


def sample_layout(
    task: TaskSpec, rng: np.random.Generator, scene: SceneObjects, n_distractors: int
) -> dict[str, Placement]:
    """Non-overlapping placements for the task's object, its target and some distractors."""
    placements: dict[str, Placement] = {}
    discs: list[tuple[float, float, float]] = []  # (x, y, radius) already taken

    def place(name: str, radius_range: tuple[float, float]) -> None:
        footprint = scene.specs[name].footprint
        for _ in range(1000):
            r = rng.uniform(*radius_range)
            a = rng.uniform(*WORKSPACE_ANGLE)
            x, y = r * math.cos(a), r * math.sin(a)
            if all(
                math.hypot(x - ox, y - oy) > footprint + o_r + LAYOUT_MARGIN
                for ox, oy, o_r in discs
            ):
                placements[name] = Placement(x, y, float(rng.uniform(-math.pi, math.pi)))
                discs.append((x, y, footprint))
                return
        raise RuntimeError(f"could not place {name!r} without overlap after 1000 tries")

    place(task.target_name, task.target_radius)
    place(task.object_name, task.object_radius)
    names = list(scene.distractor_names)
    rng.shuffle(names)
    for name in names[:n_distractors]:
        place(name, (0.12, 0.25))
    return placements


# ---- geometric placement conditions ---------------------------------------------------------


def _in_frame(pos: np.ndarray, frame_pos: np.ndarray, frame_mat: np.ndarray) -> np.ndarray:
    """`pos` expressed in a body frame given by its world position and (3, 3) rotation."""
    return frame_mat.T @ (pos - frame_pos)


def _upright(frame_mat: np.ndarray) -> bool:
    return frame_mat[2, 2] > 0.9  # body z axis within ~25 deg of world up


def block_on_plate(
    block_pos: np.ndarray, plate_pos: np.ndarray, plate_mat: np.ndarray, plate_radius: float = 0.06
) -> bool:
    local = _in_frame(block_pos, plate_pos, plate_mat)
    half, plate_half_height = 0.015, 0.005
    resting = plate_half_height + half - 0.004 < local[2] < plate_half_height + half + 0.008
    return _upright(plate_mat) and math.hypot(local[0], local[1]) < plate_radius - 0.005 and resting


def object_in_container(
    obj_pos: np.ndarray,
    container_pos: np.ndarray,
    container_mat: np.ndarray,
    geometry: scene_objects.ContainerGeometry,
) -> bool:
    local = _in_frame(obj_pos, container_pos, container_mat)
    inside = math.hypot(local[0], local[1]) < geometry.inner_radius - 0.004
    return (
        _upright(container_mat) and inside and geometry.floor_top < local[2] < geometry.rim_height
    )


def pen_in_holder(
    pen_pos: np.ndarray,
    pen_mat: np.ndarray,
    holder_pos: np.ndarray,
    holder_mat: np.ndarray,
    geometry: scene_objects.ContainerGeometry,
) -> bool:
    """The pen's lower end is deep inside the holder and the pen leans less than 50 deg."""
    axis = pen_mat[:, 0]  # the pen lies along its body x axis
    ends = (
        pen_pos + scene_objects.PEN_HALF_LENGTH * axis,
        pen_pos - scene_objects.PEN_HALF_LENGTH * axis,
    )
    lower = min(ends, key=lambda p: p[2])
    local = _in_frame(lower, holder_pos, holder_mat)
    inside = math.hypot(local[0], local[1]) < geometry.inner_radius + 0.002
    deep = local[2] < geometry.rim_height - 0.02
    steep = abs(axis[2]) > math.cos(math.radians(50))
    return _upright(holder_mat) and inside and deep and steep
