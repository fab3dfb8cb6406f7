"""Human-hand ego-centric clips (`rynnvla-sim-humanvideos` output, or any data in its format)
for stages 1-2 and the human ActionVAE.

Manifest: JSONL, one clip per line, with `video` (mp4 path relative to the manifest), `caption`,
`fps`, `num_frames`, `wrist_xyz` (N, 3) world metres, `wrist_uv` (N, 2) image pixels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from rynnvla_policy.core.actions import compute_statistics
from rynnvla_training.data.action_chunks import trajectory_as_episode

CAMERA = "ego"  # the single head-mounted camera of a human clip
KEYPOINT_FIELDS = {
    "3d": ("wrist_xyz", ("wrist_x", "wrist_y", "wrist_z")),
    "2d": ("wrist_uv", ("wrist_u", "wrist_v")),
}


@dataclass(frozen=True)
class HumanClip:
    video: Path
    caption: str
    fps: float
    keypoints: np.ndarray  # (N, 3) or (N, 2): the chosen wrist keypoints per frame


def read_manifest(path: str | Path, keypoints: str = "3d") -> list[HumanClip]:
    """Clips of one manifest; a malformed line is an error naming the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"human-video manifest not found: {path}")
    field, _ = KEYPOINT_FIELDS[keypoints]
    clips = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            clips.append(_clip(entry, path.parent, field))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}:{number}: bad clip entry: {error!r}") from error
    if not clips:
        raise ValueError(f"{path}: no clips")
    return clips


def _clip(entry: dict[str, Any], base: Path, field: str) -> HumanClip:
    keypoints = np.asarray(entry[field], dtype=np.float64)
    frames = int(entry["num_frames"])
    if keypoints.ndim != 2 or keypoints.shape[0] != frames:
        raise ValueError(f"{field} has shape {keypoints.shape}, num_frames is {frames}")
    if not np.all(np.isfinite(keypoints)):
        raise ValueError(f"{field} has non-finite values")
    caption = str(entry["caption"]).strip()
    if not caption:
        raise ValueError("empty caption")
    return HumanClip(base / entry["video"], caption, float(entry["fps"]), keypoints)


def decode_video(path: Path, indices: np.ndarray | None = None) -> np.ndarray:
    """Frames of an mp4 in one pass: (n, H, W, 3) uint8 (all frames, or `indices` in order)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            last = None if indices is None else int(np.max(indices))
            frames = []
            for number, frame in enumerate(container.decode(stream)):
                frames.append(frame.to_ndarray(format="rgb24"))
                if last is not None and number >= last:
                    break
    except (av.FFmpegError, IndexError) as error:
        raise ValueError(f"cannot decode {path}: {error}") from error
    if indices is None:
        return np.stack(frames)
    if int(np.max(indices)) >= len(frames):
        raise ValueError(f"{path} has {len(frames)} frames, asked for frame {int(np.max(indices))}")
    return np.stack([frames[i] for i in indices])


class HumanClips:
    """`EpisodeSource` over manifests: one camera ("ego"), the caption as the task, and the
    wrist trajectory in the robot convention as (states, actions) = (kp[t], kp[t + 1])."""

    camera_names = (CAMERA,)

    def __init__(self, manifests: tuple[str, ...], keypoints: str = "3d") -> None:
        if not manifests:
            raise ValueError("data.manifests is empty: name at least one human-video manifest")
        self.manifests = tuple(str(Path(m).resolve()) for m in manifests)
        self.keypoints = keypoints
        self.clips = [clip for m in manifests for clip in read_manifest(m, keypoints)]
        rates = {clip.fps for clip in self.clips}
        if len(rates) != 1:
            raise ValueError(f"clips have different frame rates {sorted(rates)}; use one fps")
        self.fps = rates.pop()
        self.feature_names = KEYPOINT_FIELDS[keypoints][1]

    def __len__(self) -> int:
        return len(self.clips)

    def length(self, episode: int) -> int:
        return len(self.clips[episode].keypoints) - 1

    def task(self, episode: int) -> str:
        return self.clips[episode].caption

    def arrays(self, episode: int) -> tuple[np.ndarray, np.ndarray]:
        return trajectory_as_episode(self.clips[episode].keypoints)

    def frames(self, episode: int, camera: str, indices: np.ndarray | None = None) -> np.ndarray:
        if camera != CAMERA:
            raise ValueError(f"human clips have one camera {CAMERA!r}, not {camera!r}")
        return decode_video(self.clips[episode].video, indices)

    @property
    def source_id(self) -> str:
        digest = hashlib.sha1()
        for manifest in self.manifests:
            digest.update(manifest.encode())
            digest.update(Path(manifest).read_bytes())
        return digest.hexdigest()


def wrist_trajectory_episodes(
    manifests: tuple[str, ...], keypoints: str, chunk_length: int
) -> dict[str, Any]:
    """Episodes + statistics for the human ActionVAE (every dim relative)."""
    clips = HumanClips(manifests, keypoints)
    arrays = [clips.arrays(e) for e in range(len(clips))]
    statistics = compute_statistics(arrays, chunk_length, (), progress=False)
    return {
        "arrays": arrays,
        "statistics": statistics,
        "absolute_dims": (),
        "names": clips.feature_names,
        "fps": clips.fps,
        "sources": list(clips.manifests),
    }
