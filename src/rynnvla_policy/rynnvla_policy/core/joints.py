"""The SO-100 / SO-101 joint layout of docs/architecture.md: the default joint names of the
processor, the policy node and the converter.

Standard library only: the node parameters and the converter config import it without pulling
in the model stack (transformers, torch).
"""

from __future__ import annotations

SO100_JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
