"""Feature statistics in the LeRobot ``meta/stats.json`` format.

Every numeric feature gets ``min, max, mean, std, count, q01, q10, q50, q90, q99``. Vector
features: per dimension, shape (D,). Images: per channel in [0, 1], shape (3, 1, 1), from
exact 256-bin histograms of every frame (sub-sampled 4x in space), so episode statistics merge
exactly into dataset statistics. ``count`` is the number of frames.
"""

from __future__ import annotations

import numpy as np

from rynnvla_training.dataset.layout import QUANTILE_KEYS, QUANTILES

PIXEL_STRIDE = 4  # spatial sub-sampling of image statistics (plenty for 8-bit histograms)


class ImageHistogram:
    """Per-channel 256-bin histogram of RGB frames, mergeable across episodes."""

    def __init__(self, counts: np.ndarray | None = None, frames: int = 0):
        self.counts = np.zeros((3, 256), np.int64) if counts is None else counts
        self.frames = frames

    def update(self, rgb: np.ndarray) -> None:  # rgb (H, W, 3) uint8
        pixels = rgb[::PIXEL_STRIDE, ::PIXEL_STRIDE]  # (H / 4, W / 4, 3) view
        for channel in range(3):  # ravel: one small contiguous copy, fastest for bincount
            self.counts[channel] += np.bincount(pixels[:, :, channel].ravel(), minlength=256)
        self.frames += 1

    def merge(self, other: ImageHistogram) -> None:
        self.counts += other.counts
        self.frames += other.frames

    def to_dict(self) -> dict:
        return {"counts": self.counts.tolist(), "frames": self.frames}

    @classmethod
    def from_dict(cls, data: dict) -> ImageHistogram:
        return cls(np.asarray(data["counts"], dtype=np.int64), int(data["frames"]))

    def feature_stats(self) -> dict[str, np.ndarray]:
        """LeRobot image statistics: per channel, shape (3, 1, 1), values in [0, 1]."""
        values = np.arange(256, dtype=np.float64) / 255.0
        totals = self.counts.sum(axis=1)  # (3,)
        if np.any(totals == 0):
            raise ValueError("image statistics of an empty histogram")
        mean = (self.counts * values).sum(axis=1) / totals
        var = (self.counts * values**2).sum(axis=1) / totals - mean**2
        cumulative = np.cumsum(self.counts, axis=1) / totals[:, None]  # (3, 256)
        present = self.counts > 0
        stats = {
            "min": values[present.argmax(axis=1)],
            "max": values[255 - present[:, ::-1].argmax(axis=1)],
            "mean": mean,
            "std": np.sqrt(np.maximum(var, 0.0)),
        }
        for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
            stats[key] = values[(cumulative >= q).argmax(axis=1)]
        stats = {k: v.reshape(3, 1, 1) for k, v in stats.items()}
        stats["count"] = np.array([self.frames])
        return stats


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot statistics of a numeric feature: values (N,) -> shape (1,), (N, D) -> (D,)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.shape[0] == 0:
        raise ValueError("statistics of an empty feature")
    stats = {
        "min": array.min(axis=0),
        "max": array.max(axis=0),
        "mean": array.mean(axis=0),
        "std": array.std(axis=0),
    }
    quantiles = np.quantile(array, QUANTILES, axis=0)  # (Q, D)
    for key, row in zip(QUANTILE_KEYS, quantiles, strict=True):
        stats[key] = row
    stats["count"] = np.array([array.shape[0]])
    return stats


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    """Feature -> stat -> nested lists (JSON-ready)."""
    return {
        feature: {key: np.asarray(value).tolist() for key, value in values.items()}
        for feature, values in stats.items()
    }
