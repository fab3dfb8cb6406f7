"""RynnVLA-001 model core: config, modeling, tokenizers, processor, checkpoints, runner.

Never imports rclpy (the trainer and offline tools import it too).

The public names below are imported lazily, on first use: `import rynnvla_policy.core.actions`
(the converter's statistics) must not pull in transformers and the whole model (~4 CPU-seconds
and ~300 MB per converter worker).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_EXPORTS = {
    "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "BackboneConfig": "config",
    "ConfigError": "config",
    "ImageTokenizerConfig": "config",
    "LossConfig": "config",
    "ProcessorConfig": "config",
    "RynnVLAConfig": "config",
    "TokenLayout": "config",
    "RynnVLAModel": "modeling",
    "TokenBookkeepingError": "modeling",
    "Preset": "presets",
    "get_preset": "presets",
    "list_presets": "presets",
    "register_preset": "presets",
    "ProcessorError": "processor",
    "RynnVLAProcessor": "processor",
    "ActionChunk": "runner",
    "FeatureContract": "runner",
    "Observation": "runner",
    "PolicyRunner": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
