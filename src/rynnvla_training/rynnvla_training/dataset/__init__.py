"""LeRobotDataset v3.0 reading and inspection (``rynnvla-dataset``).

``LeRobotV3Dataset`` (see ``reader``) is the loader the trainers use.
"""

from .reader import DatasetError, EpisodeData, LeRobotV3Dataset

__all__ = ["DatasetError", "EpisodeData", "LeRobotV3Dataset"]
