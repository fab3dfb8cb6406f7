"""`rynnvla-train stage1` and `stage2`: the human-video stages (reference section 4).

stage1: ego-centric video generative pretraining, `[caption][frame_1][caption][frame_2]...`,
cross-entropy on the image tokens of every frame after the first.
stage2: trajectory-aware video modelling, `[caption][frame][STATE][ACTION]` per frame; STATE is
the normalised wrist keypoint, the hidden state there regresses the human ActionVAE encoding of
the wrist's future trajectory (L1), frames are still predicted (CE).

Output `<output_dir>/final/`: `config.json` (our format), `model.safetensors`,
`tokenizer.json`, `image_tokenizer/` - what the next stage takes as `--init`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rynnvla_policy.core.actions import ActionNormalizer, ActionStatistics, RelativeActionTransform
from rynnvla_training.data.augment import ColorJitterConfig
from rynnvla_training.data.collate import stack_collate
from rynnvla_training.data.frame_store import FrameStore
from rynnvla_training.data.human_videos import CAMERA, HumanClips
from rynnvla_training.data.windows import WindowDataset, WindowSpec
from rynnvla_training.train.config import (
    CheckpointConfig,
    DistConfig,
    LogConfig,
    LoopConfig,
    OptimConfig,
    TrainConfig,
    check,
)
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.models.vla import VLATrainingModule
from rynnvla_training.train.parts import TrainingParts
from rynnvla_training.train.stages.base import Stage, register_preset, register_stage
from rynnvla_training.train.stages.common import write_json
from rynnvla_training.train.stages.stage3 import frame_cache_dir
from rynnvla_training.train.stages.vla_common import (
    VLAModelConfig,
    build_model,
    choose_image_tokenizer,
    choose_text_tokenizer,
    load_action_vae,
    read_action_spec,
    rebuild_parts,
    save_backbone,
)


@dataclass(frozen=True)
class HumanDataConfig:
    manifests: tuple[str, ...] = ()  # JSONL manifests (`rynnvla-sim-humanvideos` output)
    frames: int = 4  # frames per sample (the paper: 8, predicting 7 from the first)
    frame_stride: int = 1  # clip frames between consecutive sample frames
    keypoints: str = "3d"  # stage 2 wrist state: "3d" (world xyz) or "2d" (image uv)
    color_jitter: ColorJitterConfig = field(default_factory=ColorJitterConfig)
    frame_cache_dir: str = "auto"  # as stage 3: "auto" = <output_dir>/frame_cache, "" = none

    def __post_init__(self) -> None:
        check(self.frames >= 2, "data.frames", self.frames, "must be >= 2 (predict from the first)")
        check(self.frame_stride >= 1, "data.frame_stride", self.frame_stride, "must be >= 1")
        check(self.keypoints in ("3d", "2d"), "data.keypoints", self.keypoints, "'3d' or '2d'")


def _build(config: TrainConfig, with_trajectory: bool) -> TrainingParts:
    data: HumanDataConfig = config.data
    clips = HumanClips(data.manifests, data.keypoints)
    state_dim = len(clips.feature_names)
    choice = build_model(config.model, config.init, state_dim, data.frames)
    image = choice.config.image
    store = FrameStore(clips, image, frame_cache_dir(data, config.output_dir), clips.source_id)
    text = choose_text_tokenizer(
        config.model, choice.init, choice.config, (clips.task(e) for e in range(len(clips)))
    )
    tokenizer, decoder, origin = choose_image_tokenizer(
        config.model, choice.init, image, _sampler(clips, store), config.loop.seed
    )
    instruction_ids = {c.caption: text.encode(c.caption) for c in clips.clips}
    vae, chunk_length, normalizer, transform = None, 1, None, None
    if with_trajectory:
        vae_path = Path(config.model.action_vae) if config.model.action_vae else None
        vae = load_action_vae(vae_path, "stage2")
        statistics = _human_statistics(vae_path, vae, data.keypoints, state_dim)
        normalizer, transform = ActionNormalizer(statistics), RelativeActionTransform(())
        chunk_length = vae.config.chunk_length
    window = WindowSpec(data.frames, data.frame_stride, chunk_length, (CAMERA,))
    dataset = WindowDataset(
        clips, store, window, instruction_ids, data.color_jitter, normalizer, transform
    )
    module = VLATrainingModule(
        choice.model, tokenizer, (False,), text.image_code_ids, action_vae=vae, vq_decoder=decoder
    )

    def export(state: dict[str, Any], directory: Path) -> Path:
        parts = rebuild_parts(
            state, choice.config, vae.config if vae else None, decoder is not None
        )
        save_backbone(directory, parts.model, text, parts.image_tokenizer, parts.decoder)
        write_json(
            directory / "stage.json",
            {
                "stage": config.stage,
                "human_action_vae": config.model.action_vae or None,
                "keypoints": data.keypoints,
                "manifests": list(clips.manifests),
            },
        )
        return directory

    return TrainingParts(
        model=module,
        dataset=dataset,
        collate=stack_collate,
        preview=lambda model, batch: model.preview(batch),
        export=export,
        description=(
            f"video model {choice.model.num_parameters() / 1e6:.1f}M params (init: "
            f"{choice.init.kind}), {len(dataset)} windows of {data.frames} frames from "
            f"{len(clips)} clips, image tokenizer: {origin}"
        ),
    )


def _human_statistics(path: Path, vae, keypoints: str, state_dim: int) -> ActionStatistics:
    """The normalisation the human ActionVAE was trained with (its run's statistics.json)."""
    spec = read_action_spec(path)
    if spec.get("embodiment") != "human":
        raise ValueError(f"stage2 needs a human ActionVAE; {path} is {spec.get('embodiment')!r}")
    if vae.config.action_dim != state_dim:
        raise ValueError(
            f"ActionVAE {path} models {vae.config.action_dim} dims, data.keypoints="
            f"{keypoints!r} gives {state_dim}"
        )
    return ActionStatistics.load_json(path / "statistics.json")


def _sampler(clips: HumanClips, store: FrameStore):
    import numpy as np

    from rynnvla_training.data.frame_store import uint8_to_pixels

    def sample(count: int):
        per_clip = max(1, -(-count // len(clips)))
        frames = []
        for episode in range(len(clips)):
            ids = np.linspace(0, clips.length(episode), per_clip).round().astype(np.int64)
            frames.append(store.get(episode, CAMERA, ids))
        return uint8_to_pixels(np.concatenate(frames)[:count])

    return sample


def build_stage1(config: TrainConfig, context: DistContext) -> TrainingParts:
    return _build(config, with_trajectory=False)


def build_stage2(config: TrainConfig, context: DistContext) -> TrainingParts:
    return _build(config, with_trajectory=True)


register_stage(
    Stage(
        name="stage1",
        summary="ego-centric video generative pretraining on mp4 + caption manifests",
        model_config=VLAModelConfig,
        data_config=HumanDataConfig,
        build=build_stage1,
    )
)
register_stage(
    Stage(
        name="stage2",
        summary="video + human wrist-trajectory modelling on manifests with keypoints",
        model_config=VLAModelConfig,
        data_config=HumanDataConfig,
        build=build_stage2,
    )
)
for _stage in ("stage1", "stage2"):
    register_preset(
        "tiny",
        TrainConfig(
            stage=_stage,
            model=VLAModelConfig(preset="tiny"),
            data=HumanDataConfig(frames=4),
            output_dir=f"runs/{_stage}",
            optim=OptimConfig(lr=5e-4, weight_decay=0.05, warmup_steps=50, schedule="cosine"),
            loop=LoopConfig(max_steps=1000, micro_batch_size=4, num_workers=1),
            checkpoint=CheckpointConfig(every_steps=250, keep_last=2),
            log=LogConfig(every_steps=10, preview_every_steps=250),
        ),
    )
    register_preset(
        "rynnvla-7b",
        TrainConfig(
            stage=_stage,
            model=VLAModelConfig(preset="rynnvla-7b"),
            data=HumanDataConfig(frames=8, frame_cache_dir=""),
            output_dir=f"runs/{_stage}",
            # Stage 1/2 hyper-parameters were never published; the stage-3 recipe is reused.
            optim=OptimConfig(lr=2e-5, weight_decay=0.1, warmup_steps=500, grad_clip=4.0),
            loop=LoopConfig(max_steps=100_000, micro_batch_size=2, num_workers=6),
            checkpoint=CheckpointConfig(every_steps=1000, keep_last=2),
            dist=DistConfig(strategy="fsdp", precision="bf16", activation_checkpointing=True),
            log=LogConfig(every_steps=10, preview_every_steps=1000),
        ),
    )
