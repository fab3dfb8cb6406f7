"""Every training stage registers itself (and its presets) on import."""

from rynnvla_training.train.stages import stage3, vae, video, vqgan  # noqa: F401  (registers)
from rynnvla_training.train.stages.base import (
    PRESETS,
    STAGES,
    Stage,
    preset_sizes,
    register_preset,
    register_stage,
    resolve_config,
)

__all__ = [
    "PRESETS",
    "STAGES",
    "Stage",
    "preset_sizes",
    "register_preset",
    "register_stage",
    "resolve_config",
]
