"""`rynnvla-sim-humanvideos`: ego-centric human-hand manipulation clips for stages 1-2.

Writes `OUT/videos/clip_NNNNNN.mp4` (H.264 via PyAV) and `OUT/manifest.jsonl`, one line per
clip with its caption, frame count, camera intrinsics and, per frame, the wrist keypoint in 3D
world coordinates (m) and in the image plane (u right, v down, pixels), a visibility flag, and
the head camera pose [x, y, z, qw, qx, qy, qz] (camera looks along its -z, image up is +y).

    rynnvla-sim-humanvideos --clips 200 --out data/human --fps 15 --size 128x96 --workers 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class VideoJob:
    """One clip to render; `seed` and `index` fully determine its content."""

    index: int
    seed: int
    fps: float
    width: int
    height: int
    out_dir: str


_WORKER_STATE: dict = {}


def _worker_scene(width: int, height: int):
    """Per-process scene, poser and renderer (a GL context is created once per process)."""
    key = (width, height)
    if key not in _WORKER_STATE:
        from rynnvla_sim.hand import HandPoser, build_hand_scene
        from rynnvla_sim.rendering import CameraRenderer

        scene = build_hand_scene(width, height)
        poser = HandPoser(scene)
        _WORKER_STATE[key] = (scene, poser, CameraRenderer(scene.model, width, height))
    return _WORKER_STATE[key]


def render_clip(job: VideoJob) -> dict:
    """Render and encode one clip; returns its manifest entry."""
    from rynnvla_sim import hand_clips

    scene, poser, renderer = _worker_scene(job.width, job.height)
    rng = np.random.default_rng([job.seed, job.index])
    plan = hand_clips.plan_clip(scene, rng, job.index)
    hand_clips.park_unused(poser, plan)
    n_frames = int(plan.duration_s * job.fps) + 1
    frames = np.empty((n_frames, job.height, job.width, 3), dtype=np.uint8)  # (N, H, W, 3)
    xyz, uv, visible, cameras = [], [], [], []
    for i in range(n_frames):
        hand_clips.pose_frame(poser, plan, i / job.fps)
        frames[i] = renderer.render(poser.data, "head")
        wrist = poser.wrist_xyz()
        u, v, seen = poser.project(wrist, job.width, job.height)
        xyz.append([round(float(c), 5) for c in wrist])
        uv.append([round(u, 2), round(v, 2)])
        visible.append(seen)
        cameras.append([round(float(c), 6) for c in poser.camera_pose()])
    name = f"clip_{job.index:06d}"
    video = Path(job.out_dir) / "videos" / f"{name}.mp4"
    write_mp4(video, frames, job.fps)
    return {
        "clip": name,
        "video": f"videos/{name}.mp4",
        "caption": plan.caption,
        "task_family": plan.family.family,
        "embodiment": "human_hand",
        "fps": job.fps,
        "num_frames": n_frames,
        "width": job.width,
        "height": job.height,
        "seed": job.seed,
        "camera": {"name": "head", **poser.intrinsics(job.width, job.height)},
        "wrist_xyz": xyz,
        "wrist_uv": uv,
        "wrist_visible": visible,
        "camera_pose": cameras,
    }


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode RGB frames (N, H, W, 3) uint8 as H.264 (yuv420p) mp4; written atomically."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), mode="w") as container:
        stream = container.add_stream("libx264", rate=_fps_fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    os.replace(partial, path)


def _fps_fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


# ---- command line --------------------------------------------------------------------------


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 128x96, got {text!r}") from None
    if width < 16 or height < 16 or width % 2 or height % 2 or max(width, height) > 1024:
        raise argparse.ArgumentTypeError(
            f"--size {text!r}: width and height must be even (H.264 yuv420p) and in [16, 1024]"
        )
    return width, height


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rynnvla-sim-humanvideos",
        description="Render ego-centric human-hand pick-and-place clips + a JSONL manifest.",
    )
    parser.add_argument("--clips", type=_positive(int), required=True, help="number of clips")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--fps", type=_positive(float), default=15.0, help="frames per second")
    parser.add_argument("--size", type=_parse_size, default=(128, 96), help="WxH, even numbers")
    parser.add_argument("--seed", type=int, default=0, help="base seed (clip i uses [seed, i])")
    parser.add_argument("--workers", type=_positive(int), default=1, help="parallel processes")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing manifest")
    return parser


def generate(args: argparse.Namespace, progress: bool = True) -> list[dict]:
    """Render all clips (in parallel if asked) and write the manifest; returns its entries."""
    from tqdm import tqdm

    manifest = args.out / MANIFEST
    if manifest.exists() and not args.overwrite:
        raise FileExistsError(f"{manifest} exists; pass --overwrite to replace it")
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = args.size
    jobs = [
        VideoJob(i, args.seed, args.fps, width, height, str(args.out)) for i in range(args.clips)
    ]
    bar = tqdm(total=len(jobs), desc="human clips", unit="clip", disable=not progress)
    entries = []
    if args.workers == 1:
        for job in jobs:
            entries.append(render_clip(job))
            bar.update()
    else:
        # spawn: each worker makes its own GL context; none is inherited across a fork.
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            for entry in pool.imap_unordered(render_clip, jobs):
                entries.append(entry)
                bar.update()
    bar.close()
    entries.sort(key=lambda e: e["clip"])
    partial = manifest.with_suffix(".partial")
    with partial.open("w") as f:
        for entry in entries:
            f.write(json.dumps(entry) + "\n")
    os.replace(partial, manifest)
    return entries


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        entries = generate(args)
    except FileExistsError as error:
        print(f"rynnvla-sim-humanvideos: {error}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - start
    frames = sum(e["num_frames"] for e in entries)
    summary = {
        "clips": len(entries),
        "frames": frames,
        "video_seconds": round(sum(e["num_frames"] / e["fps"] for e in entries), 1),
        "wall_s": round(wall, 1),
        "ms_per_frame": round(1e3 * wall / max(frames, 1), 2),
        "manifest": str(args.out / MANIFEST),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
