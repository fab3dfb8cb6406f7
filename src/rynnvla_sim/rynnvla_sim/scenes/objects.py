"""Task objects, containers and distractors, built from primitive shapes.

Every object is a free body named `<name>` with a free joint `<name>_joint`. Containers (bowl,
pen holder) are rings of wall boxes around a floor disc, since MuJoCo collides convex shapes
only. Collision geoms that differ from the visual shape live in geom group 3 (hidden by the
renderer); visual-only geoms have no contacts and no mass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectSpec:
    """One free object: its MJCF and what layout sampling and success checks need."""

    name: str
    footprint: float  # radius (m) of a disc containing the object's table footprint
    rest_z: float  # height (m) of the body origin above the table when resting
    xml: str


@dataclass(frozen=True)
class ContainerGeometry:
    """Inner shape of a target container, used by success checks (all in metres)."""

    inner_radius: float
    floor_top: float  # height of the inner floor surface above the body origin
    rim_height: float  # height of the rim above the body origin


def object_defaults_xml() -> str:
    return """
    <default class="object">
      <geom condim="4" friction="1.0 0.01 0.001" solref="0.004 1" solimp="0.95 0.99 0.001"
            density="500"/>
      <default class="visual">
        <geom contype="0" conaffinity="0" density="0" mass="0"/>
      </default>
      <default class="collision">
        <geom group="3" rgba="0.5 0.5 0.5 0"/>
      </default>
    </default>
    """


def _body(name: str, inner: str) -> str:
    return f"""
    <body name="{name}" pos="0 0 0" childclass="object">
      <freejoint name="{name}_joint"/>
      {inner}
    </body>"""


def block(name: str = "green_block", half: float = 0.015, rgba: str = "0.15 0.75 0.2 1"):
    geom = f'<geom name="{name}_geom" type="box" size="{half} {half} {half}" rgba="{rgba}"/>'
    return ObjectSpec(name, footprint=half * math.sqrt(2), rest_z=half, xml=_body(name, geom))


def plate(name: str = "plate", radius: float = 0.06, half_height: float = 0.005):
    inner = (
        f'<geom name="{name}_geom" type="cylinder" size="{radius} {half_height}" '
        f'rgba="0.93 0.93 0.9 1" mass="0.15"/>'
        f'<geom class="visual" type="cylinder" size="{radius * 0.8:.4f} 0.0005" '
        f'pos="0 0 {half_height}" rgba="0.8 0.8 0.78 1"/>'
    )
    return ObjectSpec(name, footprint=radius, rest_z=half_height, xml=_body(name, inner))


def strawberry(name: str = "strawberry"):
    # Lying on its side: semi-axes (x long, y, z smallest) so it neither rolls nor stands up.
    sx, sy, sz = 0.021, 0.016, 0.014
    inner = (
        f'<geom name="{name}_geom" type="ellipsoid" size="{sx} {sy} {sz}" '
        f'rgba="0.85 0.08 0.12 1" mass="0.02" condim="6" friction="1.0 0.01 0.002"/>'
        f'<geom class="visual" type="ellipsoid" size="0.004 0.011 0.010" pos="{sx - 0.002} 0 0" '
        f'rgba="0.15 0.55 0.12 1"/>'
    )
    return ObjectSpec(name, footprint=sx, rest_z=sz, xml=_body(name, inner))


def _ring_walls(
    name: str, inner_r: float, thickness: float, z0: float, z1: float, rgba: str, n: int
) -> str:
    """`n` wall boxes tangent to a circle: a convex-only approximation of a cylinder wall."""
    r_mid = inner_r + thickness / 2
    half_chord = r_mid * math.tan(math.pi / n) * 1.08  # small overlap closes the seams
    half_h = (z1 - z0) / 2
    walls = []
    for i in range(n):
        a = 2 * math.pi * i / n
        walls.append(
            f'<geom name="{name}_wall{i}" type="box" '
            f'size="{thickness / 2:.4f} {half_chord:.4f} {half_h:.4f}" '
            f'pos="{r_mid * math.cos(a):.4f} {r_mid * math.sin(a):.4f} {z0 + half_h:.4f}" '
            f'euler="0 0 {a:.5f}" rgba="{rgba}"/>'
        )
    return "\n      ".join(walls)


def _container(
    name: str, inner_r: float, wall: float, floor: float, height: float, rgba: str, walls: int
) -> tuple[ObjectSpec, ContainerGeometry]:
    """An open cylinder resting on its floor disc: inner radius `inner_r`, `wall` thick,
    `floor` thick, rim at `height`; the wall is a ring of `walls` boxes."""
    inner = (
        f'<geom name="{name}_floor" type="cylinder" size="{inner_r + wall} {floor / 2}" '
        f'pos="0 0 {floor / 2}" rgba="{rgba}" mass="0.15"/>'
        + _ring_walls(name, inner_r, wall, floor, height, rgba, n=walls)
    )
    spec = ObjectSpec(name, footprint=inner_r + wall, rest_z=0.0, xml=_body(name, inner))
    return spec, ContainerGeometry(inner_r, floor_top=floor, rim_height=height)


def bowl(name: str = "bowl"):
    return _container(
        name, inner_r=0.05, wall=0.006, floor=0.006, height=0.04, rgba="0.25 0.45 0.85 1", walls=12
    )


def pen_holder(name: str = "pen_holder"):
    return _container(
        name, inner_r=0.03, wall=0.005, floor=0.01, height=0.075, rgba="0.2 0.2 0.22 1", walls=10
    )


PEN_HALF_LENGTH = 0.07


def pen(name: str = "pen"):
    # A box collides face-to-face with the finger pads (4 contacts a side) and does not roll;
    # the cylinder on top is what the cameras see. Torsional and rolling resistance (condim 6)
    # let a pen leaning in the holder come to rest instead of creeping round the rim.
    half_len, half_w = PEN_HALF_LENGTH, 0.0048
    inner = (
        f'<geom name="{name}_geom" class="collision" type="box" '
        f'size="{half_len} {half_w} {half_w}" mass="0.012" condim="6" '
        f'friction="1.0 0.02 0.005"/>'
        f'<geom class="visual" type="cylinder" size="0.0052 {half_len - 0.009:.4f}" '
        f'pos="0.003 0 0" euler="0 1.5708 0" rgba="0.1 0.3 0.85 1"/>'
        f'<geom class="visual" type="cylinder" size="0.0056 0.006" pos="{-half_len + 0.006} 0 0" '
        f'euler="0 1.5708 0" rgba="0.95 0.95 0.95 1"/>'
        f'<geom class="visual" type="capsule" size="0.0025 0.003" pos="{half_len - 0.003} 0 0" '
        f'euler="0 1.5708 0" rgba="0.1 0.1 0.1 1"/>'
    )
    return ObjectSpec(name, footprint=half_len, rest_z=half_w, xml=_body(name, inner))


def distractors() -> list[ObjectSpec]:
    """Objects that share the table with the task objects when distractors are enabled."""
    can = (
        '<geom name="yellow_can_geom" type="cylinder" size="0.02 0.03" '
        'rgba="0.95 0.8 0.1 1" mass="0.05"/>'
    )
    ball = (
        '<geom name="orange_ball_geom" type="sphere" size="0.018" rgba="1.0 0.45 0.05 1" '
        'mass="0.03" condim="6" friction="1.0 0.02 0.01"/>'
    )
    return [
        block("red_cube", half=0.017, rgba="0.8 0.1 0.1 1"),
        block("purple_block", half=0.013, rgba="0.5 0.2 0.7 1"),
        ObjectSpec("yellow_can", footprint=0.02, rest_z=0.03, xml=_body("yellow_can", can)),
        ObjectSpec("orange_ball", footprint=0.018, rest_z=0.018, xml=_body("orange_ball", ball)),
    ]
