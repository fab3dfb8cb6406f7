"""RynnVLA-001 model core: config, modeling, tokenizers, processor, checkpoints, runner.

Never imports rclpy (the trainer and offline tools import it too).
"""

from .checkpoint import Checkpoint, CheckpointError
from .config import (
    BackboneConfig,
    ConfigError,
    ImageTokenizerConfig,
    LossConfig,
    ProcessorConfig,
    RynnVLAConfig,
    TokenLayout,
)
from .modeling import RynnVLAModel, TokenBookkeepingError
from .presets import Preset, get_preset, list_presets, register_preset
from .processor import ProcessorError, RynnVLAProcessor
from .runner import ActionChunk, FeatureContract, Observation, PolicyRunner

__all__ = [
    "ActionChunk",
    "BackboneConfig",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "FeatureContract",
    "ImageTokenizerConfig",
    "LossConfig",
    "Observation",
    "PolicyRunner",
    "Preset",
    "ProcessorConfig",
    "ProcessorError",
    "RynnVLAConfig",
    "RynnVLAModel",
    "RynnVLAProcessor",
    "TokenBookkeepingError",
    "TokenLayout",
    "get_preset",
    "list_presets",
    "register_preset",
]
