"""Action parameterisation: relative action chunks, their statistics and normalisation.

RynnVLA-001 (reference section 7) predicts a chunk of ``T`` future actions relative to the
robot's current state. For a chunk starting at frame ``t``:

- step 0 of a *relative* dim is ``action_t - state_t``;
- step ``k >= 1`` of a relative dim is ``action_{t+k} - action_{t+k-1}``;
- *absolute* dims (grippers) keep the raw action value.

The chunk is then normalised per dimension, either z-score (mean / std) or min-max on the 1st and
99th percentiles to [-1, 1]. Inference inverts all of it exactly: un-normalise, cumulative sum
over the relative dims, add the current raw state.

Everything here works on numpy arrays and on torch tensors (same type in, same type out); this
module never imports rclpy, nor torch itself: a tensor can only reach it from a process that has
imported torch already, and the converter (numpy only) is spared torch's ~1 s, ~125 MB import.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

Array = Any  # np.ndarray or torch.Tensor (torch is not imported here, see the module doc)

# Smallest std (and percentile range) used for normalisation. A dimension that never moves in
# the data (e.g. a gripper that is always closed) has std 0; dividing by it would blow up any
# deviation at inference. 1e-6 is far below the resolution of real joint encoders (an SO-100
# servo has 4096 ticks per turn, 1.5e-3 rad), so flooring never changes a dimension that moves.
MIN_SCALE = 1e-6

STATISTICS_KEYS = (
    "rel_mean_action",
    "rel_std_action",
    "rel_min_action",
    "rel_max_action",
    "mean_state",
    "std_state",
)
_STD_KEYS = ("rel_std_action", "std_state")
PERCENTILE_RANGE = (1.0, 99.0)
NORMALIZATION_MODES = ("zscore", "percentile")


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------
def _as_stat_vector(name: str, value: Any) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"statistics field {name!r} is not numeric: {value!r}") from exc
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"statistics field {name!r} must be a non-empty 1-D vector, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"statistics field {name!r} has non-finite values: {array.tolist()}")
    return array


@dataclasses.dataclass(frozen=True)
class ActionStatistics:
    """Per-dimension statistics of relative action chunks and of the raw joint state.

    Fields use the reference JSON keys. Action fields describe the *relative* chunk values
    (see module docstring); ``rel_min_action`` / ``rel_max_action`` are the 1st / 99th
    percentiles. Stds below ``MIN_SCALE`` are floored to ``MIN_SCALE`` (stored floored).
    Arrays are float64 and read-only.
    """

    rel_mean_action: np.ndarray
    rel_std_action: np.ndarray
    rel_min_action: np.ndarray
    rel_max_action: np.ndarray
    mean_state: np.ndarray
    std_state: np.ndarray

    def __post_init__(self) -> None:
        for name in STATISTICS_KEYS:
            array = _as_stat_vector(name, getattr(self, name))
            if name in _STD_KEYS:
                if np.any(array < 0):
                    raise ValueError(f"statistics field {name!r} has negative values: {array}")
                array = np.maximum(array, MIN_SCALE)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        self._check_same_shape(STATISTICS_KEYS[:4])
        self._check_same_shape(STATISTICS_KEYS[4:])
        if np.any(self.rel_max_action < self.rel_min_action):
            raise ValueError(
                "rel_max_action must be >= rel_min_action in every dim, got "
                f"min {self.rel_min_action.tolist()} max {self.rel_max_action.tolist()}"
            )

    def _check_same_shape(self, names: Sequence[str]) -> None:
        shapes = {name: getattr(self, name).shape for name in names}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"statistics fields must have the same shape, got {shapes}")

    @property
    def action_dim(self) -> int:
        return int(self.rel_mean_action.shape[0])

    @property
    def state_dim(self) -> int:
        return int(self.mean_state.shape[0])

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready dict with the reference keys."""
        return {name: getattr(self, name).tolist() for name in STATISTICS_KEYS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionStatistics:
        """Build from a dict with the reference keys; extra keys (e.g. ``task_data``) are ignored."""
        if not isinstance(data, dict):
            raise ValueError(f"statistics must be a dict, got {type(data).__name__}")
        missing = [key for key in STATISTICS_KEYS if key not in data]
        if missing:
            raise ValueError(
                f"statistics are missing key(s) {missing}; present keys: {sorted(data)}"
            )
        return cls(**{key: data[key] for key in STATISTICS_KEYS})

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load_json(cls, path: str | Path) -> ActionStatistics:
        """Load our JSON, the reference trainer's statistics JSON (same keys plus ``task_data``),
        or a LeRobot ``meta/stats.json`` that carries the keys in a ``rynnvla`` block."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"statistics file {path} is not valid JSON: {exc}") from exc
        if isinstance(data, dict) and "rel_mean_action" not in data:
            data = data.get("rynnvla", data)
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"statistics file {path}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# numpy / torch helpers
# --------------------------------------------------------------------------------------------
def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _torch():
    return sys.modules["torch"]  # only called for a tensor, so torch is imported


def _cat(parts: Sequence[Array], axis: int) -> Array:
    if _is_tensor(parts[0]):
        return _torch().cat(list(parts), dim=axis)
    return np.concatenate(parts, axis=axis)


def _where(condition: np.ndarray, a: Array, b: Array) -> Array:
    if _is_tensor(a):
        torch = _torch()
        return torch.where(torch.as_tensor(condition, device=a.device), a, b)
    return np.where(condition, a, b)


def _cumsum(x: Array, axis: int) -> Array:
    if _is_tensor(x):
        return _torch().cumsum(x, dim=axis)
    return np.cumsum(x, axis=axis)


def _like(vector: np.ndarray, x: Array) -> Array:
    """The float64 statistics vector in x's framework (torch: x's float dtype and device)."""
    if _is_tensor(x):
        torch = _torch()
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return torch.tensor(vector, dtype=dtype, device=x.device)  # copies: stats are read-only
    return vector


def _check_array(name: str, x: Any) -> None:
    if not (isinstance(x, np.ndarray) or _is_tensor(x)):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")


# --------------------------------------------------------------------------------------------
# Relative <-> absolute chunks
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RelativeActionTransform:
    """Absolute action chunks <-> relative chunks (reference section 7).

    ``absolute_dims``: indices of dims kept absolute (grippers); all others are relative.
    Shapes: actions ``(T, D)`` with state ``(D,)``, or batched ``(B, T, D)`` with ``(B, D)``.
    """

    absolute_dims: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        dims = tuple(self.absolute_dims)
        for dim in dims:
            if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 0:
                raise ValueError(f"absolute_dims must be non-negative ints, got {dims!r}")
        if len(set(dims)) != len(dims):
            raise ValueError(f"absolute_dims has duplicates: {dims!r}")
        object.__setattr__(self, "absolute_dims", tuple(sorted(int(d) for d in dims)))

    def relative_mask(self, action_dim: int) -> np.ndarray:
        """(D,) bool, True where the dim is relative. Checks absolute_dims against D."""
        if self.absolute_dims and self.absolute_dims[-1] >= action_dim:
            raise ValueError(
                f"absolute_dims {self.absolute_dims} out of range for action_dim {action_dim}"
            )
        mask = np.ones(action_dim, dtype=bool)
        mask[list(self.absolute_dims)] = False
        return mask

    def _check(self, chunk: Array, state: Array, chunk_name: str) -> np.ndarray:
        _check_array(chunk_name, chunk)
        _check_array("state", state)
        if _is_tensor(chunk) != _is_tensor(state):
            raise TypeError(f"{chunk_name} and state must both be numpy or both be torch")
        shape, state_shape = tuple(chunk.shape), tuple(state.shape)
        if len(shape) not in (2, 3) or shape[-2] == 0 or state_shape != shape[:-2] + shape[-1:]:
            raise ValueError(
                f"expected {chunk_name} (T, D) with state (D,) or (B, T, D) with (B, D), T >= 1; "
                f"got {chunk_name} {shape} and state {state_shape}"
            )
        return self.relative_mask(shape[-1])

    def to_relative(self, actions: Array, state: Array) -> Array:
        """Absolute chunk (..., T, D) + current state (..., D) -> relative chunk (..., T, D)."""
        relative = self._check(actions, state, "actions")
        previous = _cat([state[..., None, :], actions[..., :-1, :]], axis=-2)  # (..., T, D)
        return _where(relative, actions - previous, actions)

    def to_absolute(self, relative_chunk: Array, state: Array) -> Array:
        """Exact inverse of ``to_relative``: cumulative sum over relative dims plus the state."""
        relative = self._check(relative_chunk, state, "relative_chunk")
        summed = _cumsum(relative_chunk, axis=-2) + state[..., None, :]  # (..., T, D)
        return _where(relative, summed, relative_chunk)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------
class ActionNormalizer:
    """Normalise relative action chunks and joint states with fixed statistics.

    ``mode="zscore"``: ``(x - rel_mean) / rel_std``.
    ``mode="percentile"``: ``2 (x - p1) / (p99 - p1) - 1`` (range floored to ``MIN_SCALE``;
    the reference adds 1e-8 to the range instead, a relative difference far below float32
    resolution); values outside the percentiles map outside [-1, 1] and are never clipped, so
    the inverse is exact. States are always z-scored (as in the reference). numpy inputs give float64 results;
    torch inputs keep their float dtype and device. The last axis must be the feature axis.
    """

    def __init__(self, stats: ActionStatistics, mode: str = "zscore") -> None:
        if not isinstance(stats, ActionStatistics):
            raise TypeError(f"stats must be ActionStatistics, got {type(stats).__name__}")
        if mode not in NORMALIZATION_MODES:
            raise ValueError(f"mode must be one of {NORMALIZATION_MODES}, got {mode!r}")
        self.stats = stats
        self.mode = mode
        if mode == "zscore":
            self._action_offset, self._action_scale = stats.rel_mean_action, stats.rel_std_action
        else:
            # Map [p1, p99] to [-1, 1]: offset = centre, scale = half range.
            half_range = np.maximum(stats.rel_max_action - stats.rel_min_action, MIN_SCALE) / 2
            self._action_offset = stats.rel_min_action + half_range
            self._action_scale = half_range

    def __repr__(self) -> str:
        return f"ActionNormalizer(mode={self.mode!r}, action_dim={self.stats.action_dim})"

    @staticmethod
    def _apply(x: Array, offset: np.ndarray, scale: np.ndarray, name: str, inverse: bool) -> Array:
        _check_array(name, x)
        if x.ndim == 0 or x.shape[-1] != offset.shape[0]:
            raise ValueError(
                f"{name} must have {offset.shape[0]} features in its last axis, got shape "
                f"{tuple(x.shape)}"
            )
        offset, scale = _like(offset, x), _like(scale, x)
        if not _is_tensor(x):
            x = np.asarray(x, dtype=np.float64)
        if inverse:
            return x * scale + offset
        return (x - offset) / scale

    def normalize_actions(self, relative_chunk: Array) -> Array:
        return self._apply(
            relative_chunk, self._action_offset, self._action_scale, "actions", inverse=False
        )

    def unnormalize_actions(self, normalized_chunk: Array) -> Array:
        return self._apply(
            normalized_chunk, self._action_offset, self._action_scale, "actions", inverse=True
        )

    def normalize_state(self, state: Array) -> Array:
        stats = self.stats
        return self._apply(state, stats.mean_state, stats.std_state, "state", inverse=False)

    def unnormalize_state(self, normalized_state: Array) -> Array:
        stats = self.stats
        return self._apply(
            normalized_state, stats.mean_state, stats.std_state, "state", inverse=True
        )


# --------------------------------------------------------------------------------------------
# Building training chunks and computing statistics over a dataset
# --------------------------------------------------------------------------------------------
def _check_episode(states: Any, actions: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    states = np.asarray(states, dtype=np.float64)
    actions = np.asarray(actions, dtype=np.float64)
    if (
        states.ndim != 2
        or states.shape != actions.shape
        or states.shape[0] == 0
        or states.shape[1] == 0
    ):
        raise ValueError(
            f"{where}: expected states and actions of the same shape (N, D) with N, D >= 1, got "
            f"states {states.shape} and actions {actions.shape}"
        )
    for name, array in (("states", states), ("actions", actions)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where}: {name} contain non-finite values")
    return states, actions


def build_relative_chunks(
    states: np.ndarray,
    actions: np.ndarray,
    chunk_length: int,
    transform: RelativeActionTransform,
    starts: Sequence[int] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Relative chunks of one episode, exactly as training builds them.

    states, actions: (N, D) raw arrays of one episode. A chunk starting at frame ``t`` uses
    ``state_t`` and ``action_t .. action_{t+T-1}``. Chunks that run past the episode end are
    padded by repeating the last action: the robot holds its final pose, so padded relative
    steps are 0 and padded absolute dims equal the last action.

    Returns ``(chunks (S, T, D) float64, valid (S, T) bool)``; ``valid`` is False on padded
    steps. ``starts`` defaults to every frame ``0 .. N-1``.
    """
    states, actions = _check_episode(states, actions, "build_relative_chunks")
    if isinstance(chunk_length, bool) or not isinstance(chunk_length, int) or chunk_length < 1:
        raise ValueError(f"chunk_length must be a positive int, got {chunk_length!r}")
    num_frames = actions.shape[0]
    starts = np.arange(num_frames) if starts is None else np.asarray(starts, dtype=np.int64)
    if starts.ndim != 1 or (starts.size and (starts.min() < 0 or starts.max() >= num_frames)):
        raise ValueError(f"starts must be 1-D frame indices in [0, {num_frames}), got {starts}")
    frame = starts[:, None] + np.arange(chunk_length)[None, :]  # (S, T)
    valid = frame < num_frames
    chunk_actions = actions[np.minimum(frame, num_frames - 1)]  # (S, T, D)
    return transform.to_relative(chunk_actions, states[starts]), valid


class _RunningMoments:
    """Mean and population std over rows, merged batch by batch (Chan et al.) in float64."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, rows: np.ndarray) -> None:  # rows (M, D)
        if rows.shape[0] == 0:
            return
        batch_mean = rows.mean(axis=0)
        batch_m2 = ((rows - batch_mean) ** 2).sum(axis=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = rows.shape[0], batch_mean, batch_m2
            return
        if rows.shape[1] != self.mean.shape[0]:
            raise ValueError(f"feature size changed from {self.mean.shape[0]} to {rows.shape[1]}")
        total = self.count + rows.shape[0]
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (rows.shape[0] / total)
        self.m2 = self.m2 + batch_m2 + delta**2 * (self.count * rows.shape[0] / total)
        self.count = total

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count)


class _RowReservoir:
    """Uniform sample of at most ``capacity`` rows (reservoir sampling, Algorithm R).

    Holds every row while fewer than ``capacity`` were seen, so percentiles are exact on small
    data; beyond that memory stays at ``capacity`` rows and percentiles are estimates from a
    uniform sample (rank error ~ 1/sqrt(capacity)).
    """

    def __init__(self, capacity: int, seed: int) -> None:
        self.capacity = capacity
        self.seen = 0
        self.rows: list[np.ndarray] = []
        self.sample: np.ndarray | None = None  # (capacity, D) once full
        self._rng = np.random.default_rng(seed)

    def update(self, rows: np.ndarray) -> None:  # rows (M, D)
        if self.sample is None:
            room = self.capacity - self.seen
            self.rows.append(rows[:room])
            self.seen += min(room, rows.shape[0])
            rows = rows[room:]
            if self.seen == self.capacity:
                self.sample, self.rows = np.concatenate(self.rows, axis=0), []
        if rows.shape[0] == 0:
            return
        # Row i of this batch is the (seen + i + 1)-th row overall: keep it with probability
        # capacity / (seen + i + 1), in a uniformly chosen slot. Later rows win a shared slot.
        slots = self._rng.integers(0, self.seen + 1 + np.arange(rows.shape[0]))
        keep = np.flatnonzero(slots < self.capacity)
        last_slots, last_pos = np.unique(slots[keep][::-1], return_index=True)
        self.sample[last_slots] = rows[keep[::-1][last_pos]]
        self.seen += rows.shape[0]

    def values(self) -> np.ndarray:
        return self.sample if self.sample is not None else np.concatenate(self.rows, axis=0)


def compute_statistics(
    episodes: Iterable[tuple[np.ndarray, np.ndarray]],
    chunk_length: int,
    absolute_dims: Sequence[int],
    *,
    percentile_sample_size: int = 1_000_000,
    seed: int = 0,
    progress: bool = True,
) -> ActionStatistics:
    """Statistics of relative action chunks and raw states over a dataset, in one pass.

    episodes: iterable of ``(states (N, D), actions (N, D))``, read one at a time. Every frame
    starts a chunk (built by ``build_relative_chunks``, padded steps included: training sees
    them too). Mean / std (population, ddof 0) are exact and streamed. The 1st / 99th
    percentiles are exact while the dataset has at most ``percentile_sample_size`` relative
    steps, otherwise estimated from a seeded uniform reservoir of that many steps, which bounds
    memory to ``percentile_sample_size * D`` floats. States count each frame once.
    """
    if percentile_sample_size < 1:
        raise ValueError(f"percentile_sample_size must be >= 1, got {percentile_sample_size}")
    transform = RelativeActionTransform(tuple(absolute_dims))
    action_moments, state_moments = _RunningMoments(), _RunningMoments()
    reservoir = _RowReservoir(percentile_sample_size, seed)
    block = max(1, 65536 // chunk_length)  # chunk starts per block: bounds per-episode memory
    dim = None
    iterator = tqdm(episodes, desc="action statistics", unit="episode", disable=not progress)
    for index, (states, actions) in enumerate(iterator):
        states, actions = _check_episode(states, actions, f"episode {index}")
        if dim is not None and actions.shape[1] != dim:
            raise ValueError(f"episode {index}: action dim {actions.shape[1]}, expected {dim}")
        dim = actions.shape[1]
        state_moments.update(states)
        for first in range(0, actions.shape[0], block):
            starts = np.arange(first, min(first + block, actions.shape[0]))
            chunks, _ = build_relative_chunks(states, actions, chunk_length, transform, starts)
            rows = chunks.reshape(-1, dim)  # (S * T, D)
            action_moments.update(rows)
            reservoir.update(rows)
    if dim is None:
        raise ValueError("compute_statistics got no episodes")
    low, high = np.percentile(reservoir.values(), PERCENTILE_RANGE, axis=0)
    return ActionStatistics(
        rel_mean_action=action_moments.mean,
        rel_std_action=action_moments.std(),
        rel_min_action=low,
        rel_max_action=high,
        mean_state=state_moments.mean,
        std_state=state_moments.std(),
    )


__all__ = [
    "MIN_SCALE",
    "NORMALIZATION_MODES",
    "STATISTICS_KEYS",
    "ActionNormalizer",
    "ActionStatistics",
    "RelativeActionTransform",
    "build_relative_chunks",
    "compute_statistics",
]
