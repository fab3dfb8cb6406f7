"""Rosbag2 recordings -> LeRobotDataset v3.0 (``rynnvla-convert``).

from rynnvla_training.convert import ConvertConfig, run_conversion
result = run_conversion(["recordings/"], "datasets/pick", ConvertConfig.from_yaml("map.yaml"))
result.episodes, result.frames, result.report["bags"]
"""

from .config import ConfigError, ConvertConfig
from .pipeline import ConversionError, ConversionResult, run_conversion

__all__ = [
    "ConfigError",
    "ConversionError",
    "ConversionResult",
    "ConvertConfig",
    "run_conversion",
]
