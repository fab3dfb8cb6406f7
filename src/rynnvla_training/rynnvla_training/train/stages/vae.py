"""`rynnvla-train vae`: one ActionVAE per embodiment.

robot: chunks of a LeRobot v3 dataset's actions, relative to the state (gripper dims absolute)
and normalised with the dataset statistics. human: wrist keypoint trajectories from the
human-video manifests (every dim relative: per-step displacements).

Output `<output_dir>/final/`: the ActionVAE (`config.json`, `model.safetensors`; loadable by
`ActionVAE.from_pretrained`), `statistics.json` (the normalisation it was trained with) and
`action_spec.json` (embodiment, chunk length, absolute dims, normalisation, feature names).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rynnvla_policy.core.action_vae import ActionVAE, get_action_vae_preset
from rynnvla_policy.core.actions import ActionNormalizer, ActionStatistics, RelativeActionTransform
from rynnvla_training.data.action_chunks import ActionChunkDataset
from rynnvla_training.data.collate import stack_collate
from rynnvla_training.train.config import LoopConfig, OptimConfig, TrainConfig, check
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.parts import TrainingParts
from rynnvla_training.train.stages.base import Stage, register_preset, register_stage
from rynnvla_training.train.stages.common import (
    all_episode_arrays,
    open_robot_datasets,
    robot_statistics,
    strip_prefix,
    write_json,
)

SPEC_FILE = "action_spec.json"
STATISTICS_FILE = "statistics.json"


@dataclass(frozen=True)
class VAEModelConfig:
    preset: str = "tiny"  # ActionVAE preset of the model core: "tiny" or "rynnvla-7b"
    kl_weight: float | None = None  # None: the preset's (1e-4)
    dropout: float | None = None  # None: the preset's (0.1)


@dataclass(frozen=True)
class VAEDataConfig:
    embodiment: str = "robot"  # "robot" (lerobot_roots) or "human" (manifests)
    lerobot_roots: tuple[str, ...] = ()  # LeRobot v3 dataset directories
    split: str = "train"  # dataset split ("" = every episode)
    manifests: tuple[str, ...] = ()  # human-video JSONL manifests
    keypoints: str = "3d"  # human wrist keypoints to model: "3d" or "2d" (image plane)
    chunk_length: int = 20  # steps per chunk (the VLA's chunk length)
    absolute_dims: tuple[int, ...] = (5,)  # robot dims kept absolute (gripper)
    normalization: str = "zscore"  # "zscore" or "percentile"
    recompute_statistics: bool = False  # ignore the dataset's stats.json block

    def __post_init__(self) -> None:
        check(
            self.embodiment in ("robot", "human"),
            "data.embodiment",
            self.embodiment,
            "must be 'robot' or 'human'",
        )
        check(self.keypoints in ("3d", "2d"), "data.keypoints", self.keypoints, "'3d' or '2d'")
        check(self.chunk_length >= 1, "data.chunk_length", self.chunk_length, "must be >= 1")
        check(
            self.normalization in ("zscore", "percentile"),
            "data.normalization",
            self.normalization,
            "must be 'zscore' or 'percentile'",
        )


class ActionVAEModule(nn.Module):
    """The trainer's API over ActionVAE.forward(actions, mask)."""

    def __init__(self, vae: ActionVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        loss, metrics = self.vae(batch["actions"], batch["mask"])
        return loss, {"l1": metrics["l1"], "kl": metrics["kl"]}

    def transformer_blocks(self) -> list[nn.Module]:
        return [*self.vae.encoder.layers, *self.vae.decoder.decoder_layers]


@dataclass
class _Episodes:
    arrays: list  # [(states (N, D), actions (N, D))]
    statistics: ActionStatistics
    absolute_dims: tuple[int, ...]
    names: tuple[str, ...]
    fps: float
    sources: list[str]


def _robot_episodes(data: VAEDataConfig) -> _Episodes:
    sources = open_robot_datasets(data.lerobot_roots, data.split)
    stats = robot_statistics(
        sources, data.chunk_length, data.absolute_dims, data.recompute_statistics
    )
    return _Episodes(
        arrays=all_episode_arrays(sources),
        statistics=stats,
        absolute_dims=data.absolute_dims,
        names=sources[0].joint_names,
        fps=sources[0].fps,
        sources=[str(s.root) for s in sources],
    )


def _human_episodes(data: VAEDataConfig) -> _Episodes:
    from rynnvla_training.data.human_videos import wrist_trajectory_episodes

    return _Episodes(**wrist_trajectory_episodes(data.manifests, data.keypoints, data.chunk_length))


def build_vae(config: TrainConfig, context: DistContext) -> TrainingParts:
    data: VAEDataConfig = config.data
    episodes = _robot_episodes(data) if data.embodiment == "robot" else _human_episodes(data)
    action_dim = episodes.statistics.action_dim
    overrides = {"action_dim": action_dim, "chunk_length": data.chunk_length}
    for name in ("kl_weight", "dropout"):
        if getattr(config.model, name) is not None:
            overrides[name] = getattr(config.model, name)
    vae = ActionVAE(get_action_vae_preset(config.model.preset, **overrides))
    if config.init:
        _load_init(vae, Path(config.init))
    normalizer = ActionNormalizer(episodes.statistics, mode=data.normalization)
    transform = RelativeActionTransform(episodes.absolute_dims)
    dataset = ActionChunkDataset(episodes.arrays, data.chunk_length, transform, normalizer)

    def export(state: dict[str, Any], directory: Path) -> Path:
        trained = ActionVAE(vae.config)
        trained.load_state_dict(strip_prefix(state, "vae."))
        trained.save_pretrained(directory)
        episodes.statistics.save_json(directory / STATISTICS_FILE)
        write_json(
            directory / SPEC_FILE,
            {
                "embodiment": data.embodiment,
                "chunk_length": data.chunk_length,
                "absolute_dims": list(episodes.absolute_dims),
                "normalization": data.normalization,
                "feature_names": list(episodes.names),
                "fps": episodes.fps,
                "sources": episodes.sources,
            },
        )
        return directory

    return TrainingParts(
        model=ActionVAEModule(vae),
        dataset=dataset,
        collate=stack_collate,
        export=export,
        description=(
            f"{data.embodiment} ActionVAE {vae.num_parameters() / 1e6:.2f}M params, "
            f"{len(dataset)} chunks of {data.chunk_length}x{action_dim}"
        ),
    )


def _load_init(vae: ActionVAE, path: Path) -> None:
    """Continue from a saved ActionVAE (same dimensions)."""
    loaded = ActionVAE.from_pretrained(path)
    if loaded.config != vae.config:
        raise ValueError(f"--init {path}: ActionVAE config {loaded.config} != {vae.config}")
    vae.load_state_dict(loaded.state_dict())


register_stage(
    Stage(
        name="vae",
        summary="train an ActionVAE (robot arm chunks or human wrist trajectories)",
        model_config=VAEModelConfig,
        data_config=VAEDataConfig,
        build=build_vae,
    )
)
register_preset(
    "tiny",
    TrainConfig(
        stage="vae",
        model=VAEModelConfig(preset="tiny"),
        data=VAEDataConfig(),
        output_dir="runs/vae",
        optim=OptimConfig(lr=1e-3, weight_decay=1e-4, warmup_steps=50, grad_clip=1.0),
        loop=LoopConfig(max_steps=1500, micro_batch_size=64, num_workers=0),
    ),
)
register_preset(
    "rynnvla-7b",
    TrainConfig(
        stage="vae",
        model=VAEModelConfig(preset="rynnvla-7b"),
        data=VAEDataConfig(),
        output_dir="runs/vae",
        # Published recipe: AdamW lr 1e-5, wd 1e-4, bf16.
        optim=OptimConfig(lr=1e-5, weight_decay=1e-4, betas=(0.9, 0.999), grad_clip=0.0),
        loop=LoopConfig(max_steps=100_000, micro_batch_size=256, num_workers=4),
    ),
)
