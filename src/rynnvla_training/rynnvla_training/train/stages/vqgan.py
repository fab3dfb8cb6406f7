"""`rynnvla-train vqgan`: a small image tokenizer for the small presets (the 7B preset uses the
published Chameleon VQGAN), on frames of robot datasets and/or human clips.

Output `<output_dir>/final/`: the model core's `image_tokenizer/` format (`config.json`,
`model.safetensors`) plus `decoder.safetensors`; pass it as `model.image_tokenizer` to stages
1-3 (the decoder then draws the preview images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rynnvla_policy.core.presets import get_preset
from rynnvla_training.data.collate import stack_collate
from rynnvla_training.data.frame_store import FrameStore, uint8_to_pixels
from rynnvla_training.data.human_videos import CAMERA, HumanClips
from rynnvla_training.data.sampling import SampleKey
from rynnvla_training.train.config import LogConfig, LoopConfig, OptimConfig, TrainConfig, check
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.models.vqgan import TrainableVQGAN, VQLossWeights
from rynnvla_training.train.parts import TrainingParts
from rynnvla_training.train.preview import compose_preview
from rynnvla_training.train.stages.base import Stage, register_preset, register_stage
from rynnvla_training.train.stages.common import open_robot_datasets
from rynnvla_training.train.stages.stage3 import frame_cache_dir


@dataclass(frozen=True)
class VQGANModelConfig:
    preset: str = "tiny"  # model-core preset whose image-tokenizer settings are trained
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    codebook_weight: float = 1.0
    commitment_weight: float = 0.25  # beta
    kmeans_init_frames: int = 256  # frames whose features seed the codebook; 0: random codebook


@dataclass(frozen=True)
class FrameDataConfig:
    lerobot_roots: tuple[str, ...] = ()  # robot datasets (every camera unless `cameras`)
    split: str = "train"
    cameras: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()  # human-video manifests
    frames_per_sample: int = 4  # random frames drawn from one decoded episode / clip
    crop: int = 32  # random square crop (pixels at model resolution); 0: whole frames
    frame_cache_dir: str = "auto"

    def __post_init__(self) -> None:
        check(self.frames_per_sample >= 1, "data.frames_per_sample", self.frames_per_sample, ">= 1")
        check(self.crop >= 0, "data.crop", self.crop, "must be >= 0")


class FrameDataset(Dataset):
    """One item per (source, episode, camera): `frames_per_sample` random frames, randomly
    cropped -> {"pixels" (F, 3, crop, crop)} in [-1, 1]."""

    def __init__(self, entries: list[tuple[Any, FrameStore, int, str]], frames: int, crop: int):
        self.entries = entries  # (source, store, episode, camera)
        self.frames = frames
        self.crop = crop

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        source, store, episode, camera = self.entries[key.index]
        rng = key.rng()
        ids = np.sort(rng.integers(0, source.length(episode), self.frames))
        frames = store.get(episode, camera, ids)  # (F, h, w, 3) uint8
        if self.crop:
            height, width = frames.shape[1:3]
            if self.crop > min(height, width):
                raise ValueError(f"data.crop={self.crop} exceeds frames of {height}x{width}")
            top = int(rng.integers(0, height - self.crop + 1))
            left = int(rng.integers(0, width - self.crop + 1))
            frames = frames[:, top : top + self.crop, left : left + self.crop]
        return {"pixels": uint8_to_pixels(frames)}


def _entries(data: FrameDataConfig, image, cache: Path | None) -> list:
    entries = []
    if data.lerobot_roots:
        for source in open_robot_datasets(data.lerobot_roots, data.split):
            store = FrameStore(source, image, cache, source.source_id)
            for camera in data.cameras or source.camera_names:
                entries += [(source, store, e, camera) for e in range(len(source))]
    if data.manifests:
        clips = HumanClips(data.manifests)
        store = FrameStore(clips, image, cache, clips.source_id)
        entries += [(clips, store, e, CAMERA) for e in range(len(clips))]
    if not entries:
        raise ValueError("vqgan needs frames: set data.lerobot_roots and/or data.manifests")
    return entries


class VQGANModule(TrainableVQGAN):
    """Takes (B, F, 3, h, w) batches of frames."""

    def forward(self, batch: dict[str, torch.Tensor]):
        return super().forward({"pixels": batch["pixels"].flatten(0, 1)})

    @torch.no_grad()
    def preview(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        pixels = batch["pixels"][0]  # (F, 3, h, w)
        features = self.tokenizer.features(pixels)
        _, codes = self.quantize(features)
        recon = self.decode_codes(codes)

        def to_uint8(x: torch.Tensor) -> np.ndarray:  # (F, 3, h, w) -> (F, 1, h, w, 3)
            images = ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte()
            return images.permute(0, 2, 3, 1).cpu().numpy()[:, None]

        return compose_preview(to_uint8(pixels), to_uint8(recon), conditioned_frames=0)


def build_vqgan(config: TrainConfig, context: DistContext) -> TrainingParts:
    block: VQGANModelConfig = config.model
    weights = VQLossWeights(
        block.l1_weight, block.l2_weight, block.codebook_weight, block.commitment_weight
    )
    if config.init:
        loaded = TrainableVQGAN.from_pretrained(Path(config.init), weights)
        image = loaded.config
        module = VQGANModule(image, weights)
        module.load_state_dict(loaded.state_dict())
    else:
        image = get_preset(block.preset).model.image
        module = VQGANModule(image, weights)
    data: FrameDataConfig = config.data
    dataset = FrameDataset(
        _entries(data, image, frame_cache_dir(data, config.output_dir)),
        data.frames_per_sample,
        data.crop,
    )
    origin = f"init {config.init}" if config.init else "random"
    if not config.init and block.kmeans_init_frames:
        error = module.init_codebook(_kmeans_pixels(dataset, block.kmeans_init_frames), seed=0)
        origin = f"k-means on {block.kmeans_init_frames} frames (mse {error:.4f})"

    def export(state: dict[str, Any], directory: Path) -> Path:
        trained = TrainableVQGAN(image, weights)
        trained.load_state_dict(state)
        return trained.save_pretrained(directory)

    return TrainingParts(
        model=module,
        dataset=dataset,
        collate=stack_collate,
        preview=lambda model, batch: model.preview(batch),
        export=export,
        description=(
            f"VQGAN {sum(p.numel() for p in module.parameters()) / 1e6:.2f}M params, "
            f"codebook {image.codebook_size} x {image.embed_dim} ({origin}), "
            f"{len(dataset)} episode-cameras"
        ),
    )


def _kmeans_pixels(dataset: FrameDataset, count: int) -> torch.Tensor:
    """`count` frames spread over the dataset (deterministic) for the codebook seed."""
    per_item = max(1, -(-count // len(dataset)))
    pixels = []
    for index in range(len(dataset)):
        for draw in range(per_item):
            pixels.append(dataset[SampleKey(index, -1, draw)]["pixels"])
    return torch.cat(pixels)[:count]


register_stage(
    Stage(
        name="vqgan",
        summary="train a small VQGAN image tokenizer (+ decoder) on dataset / video frames",
        model_config=VQGANModelConfig,
        data_config=FrameDataConfig,
        build=build_vqgan,
    )
)
register_preset(
    "tiny",
    TrainConfig(
        stage="vqgan",
        model=VQGANModelConfig(preset="tiny"),
        data=FrameDataConfig(crop=32),
        output_dir="runs/vqgan",
        optim=OptimConfig(lr=4e-4, betas=(0.5, 0.9), weight_decay=0.0, warmup_steps=50),
        # 32-px crops train the convolutional tokenizer ~4.5x faster than 64-px ones on CPU
        # (0.75 s per step of 8 x 4 crops on one loaded core) and it then runs on any size.
        loop=LoopConfig(max_steps=600, micro_batch_size=8, num_workers=1),
        log=LogConfig(every_steps=10, preview_every_steps=200),
    ),
)
