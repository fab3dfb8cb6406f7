"""`rynnvla-train stage3`: robot VLA on LeRobot v3 datasets (reference section 4, stage 3).

Each sample is K frames of one episode (`[instr][front][wrist][STATE][ACTION]` per frame); the
target of each ACTION is the frozen ActionVAE encoding of the 20-step chunk starting there,
future frames' image tokens are an auxiliary loss. Starts from scratch, from our stage-2 (or
any) checkpoint, or from a released RynnVLA-001 directory (`--init`).

Output `<output_dir>/final/`: a complete checkpoint (`PolicyRunner.from_pretrained` loads it):
processor with the training dataset's statistics, text tokenizer, image tokenizer (+ VQ
decoder when known), the ActionVAE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rynnvla_policy.core.checkpoint import IMAGE_TOKENIZER_DIR, Checkpoint
from rynnvla_policy.core.config import ProcessorConfig
from rynnvla_policy.core.processor import RynnVLAProcessor
from rynnvla_training.data.augment import ColorJitterConfig
from rynnvla_training.data.code_store import CodeStore
from rynnvla_training.data.collate import ConcatKeyed, stack_collate
from rynnvla_training.data.frame_store import FrameStore, uint8_to_pixels
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
from rynnvla_training.train.stages.common import open_robot_datasets, robot_statistics
from rynnvla_training.train.stages.vla_common import (
    VLAModelConfig,
    build_model,
    choose_image_tokenizer,
    choose_text_tokenizer,
    init_image_embeddings_from_codebook,
    load_action_vae,
    read_action_spec,
    rebuild_parts,
)


@dataclass(frozen=True)
class RobotDataConfig:
    lerobot_roots: tuple[str, ...] = ()  # LeRobot v3 dataset directories (same joints and fps)
    split: str = "train"  # dataset split ("" = every episode)
    cameras: tuple[str, ...] = ()  # cameras in prompt order; (): every camera of the dataset
    wrist_cameras: tuple[str, ...] = ("wrist",)  # cameras wrapped in WRIST_START / WRIST_END
    history_frames: int = 0  # K frames per sample; 0: the model preset's train_frames
    frame_stride: int = 1  # dataset frames between consecutive sample frames
    absolute_dims: tuple[int, ...] = (5,)  # action dims kept absolute (gripper)
    normalization: str = "zscore"  # "zscore" or "percentile"
    recompute_statistics: bool = False  # ignore the dataset's stats.json `rynnvla` block
    color_jitter: ColorJitterConfig = field(default_factory=ColorJitterConfig)
    frame_cache_dir: str = "auto"  # preprocessed-frame cache; "auto": <output_dir>/frame_cache,
    # "": none (each sample decodes the frames it needs)
    cache_codes: bool = True  # with a frame cache and no colour jitter: VQ-encode each frame
    # once per run (in the cache), not once per sample

    def __post_init__(self) -> None:
        check(self.history_frames >= 0, "data.history_frames", self.history_frames, ">= 0")
        check(self.frame_stride >= 1, "data.frame_stride", self.frame_stride, "must be >= 1")
        check(
            self.normalization in ("zscore", "percentile"),
            "data.normalization",
            self.normalization,
            "must be 'zscore' or 'percentile'",
        )


def frame_cache_dir(data: Any, output_dir: str) -> Path | None:
    if data.frame_cache_dir == "auto":
        return Path(output_dir) / "frame_cache"
    return Path(data.frame_cache_dir) if data.frame_cache_dir else None


def build_stage3(config: TrainConfig, context: DistContext) -> TrainingParts:
    data: RobotDataConfig = config.data
    sources = open_robot_datasets(data.lerobot_roots, data.split)
    cameras = data.cameras or sources[0].camera_names
    frames = data.history_frames or _preset_frames(config.model.preset)
    choice = build_model(config.model, config.init, len(sources[0].joint_names), frames)
    vae_path = Path(config.model.action_vae) if config.model.action_vae else choice.init.action_vae
    vae = load_action_vae(vae_path, "stage3")
    _check_vae(vae, vae_path, data, len(sources[0].joint_names))
    chunk_length = vae.config.chunk_length
    statistics = robot_statistics(
        sources, chunk_length, data.absolute_dims, data.recompute_statistics
    )
    text = choose_text_tokenizer(
        config.model,
        choice.init,
        choice.config,
        (s.task(e) for s in sources for e in range(len(s))),
    )
    features = ProcessorConfig(
        camera_names=tuple(cameras),
        wrist_cameras=tuple(c for c in cameras if c in data.wrist_cameras),
        joint_names=sources[0].joint_names,
        chunk_length=chunk_length,
        fps=sources[0].fps,
        absolute_dims=data.absolute_dims,
        normalization=data.normalization,
    )
    image = choice.config.image
    cache = frame_cache_dir(data, config.output_dir)
    stores = [FrameStore(s, image, cache, s.source_id) for s in sources]
    tokenizer, decoder, tokenizer_origin = choose_image_tokenizer(
        config.model,
        choice.init,
        image,
        _frame_sampler(sources, stores, cameras),
        config.loop.seed,
    )
    if config.model.image_embedding_init == "codebook":
        if choice.init.kind != "scratch":
            raise ValueError(
                f"model.image_embedding_init=codebook is for a model from scratch; the init "
                f"{config.init!r} brings trained image-code embeddings"
            )
        init_image_embeddings_from_codebook(choice.model, tokenizer, config.loop.seed)
    code_stores = _code_stores(data, stores, tokenizer, tuple(cameras), context)
    processor = RynnVLAProcessor(features, image, choice.config.tokens, statistics, text)
    window = WindowSpec(frames, data.frame_stride, chunk_length, tuple(cameras))
    tasks = {s.task(e) for s in sources for e in range(len(s))}
    instruction_ids = {task: processor.encode_instruction(task) for task in tasks}
    dataset = ConcatKeyed(
        [
            WindowDataset(
                source,
                store,
                window,
                instruction_ids,
                data.color_jitter,
                normalizer=processor.normalizer,
                transform=processor.transform,
                codes=codes,
            )
            for source, store, codes in zip(sources, stores, code_stores, strict=True)
        ]
    )
    module = VLATrainingModule(
        choice.model,
        tokenizer,
        tuple(c in features.wrist_cameras for c in cameras),
        text.image_code_ids,
        action_vae=vae,
        vq_decoder=decoder,
    )

    def export(state: dict[str, Any], directory: Path) -> Path:
        parts = rebuild_parts(state, choice.config, vae.config, decoder is not None)
        Checkpoint(parts.model, parts.image_tokenizer, parts.action_vae, processor).save_pretrained(
            directory
        )
        if parts.decoder is not None:
            parts.decoder.save(directory / IMAGE_TOKENIZER_DIR)
        return directory

    notes = "; ".join(choice.init.notes)
    return TrainingParts(
        model=module,
        dataset=dataset,
        collate=stack_collate,
        preview=lambda model, batch: model.preview(batch),
        export=export,
        description=(
            f"VLA {choice.model.num_parameters() / 1e6:.1f}M params (init: {choice.init.kind}"
            f"{'; re-initialised ' + str(choice.reinitialised) if choice.reinitialised else ''}"
            f"{'; ' + notes if notes else ''}), {len(dataset)} windows of {frames} frames x "
            f"{list(cameras)}, chunk {chunk_length}, image tokenizer: {tokenizer_origin}"
            f"{'; frames as cached VQ codes' if code_stores[0] is not None else ''}"
        ),
    )


def _code_stores(data, stores, tokenizer, cameras, context: DistContext) -> list:
    """One filled `CodeStore` per source when codes can be cached, else Nones."""
    if not (data.cache_codes and stores[0].root is not None and not data.color_jitter.enabled):
        return [None] * len(stores)
    code_stores = [CodeStore(store, tokenizer) for store in stores]

    def fill() -> None:
        for index, code_store in enumerate(code_stores):
            code_store.fill(cameras, f"VQ codes of dataset {index + 1}/{len(stores)}")

    if context.local_rank == 0:
        fill()  # each node's first process encodes while the others wait
    context.barrier()
    fill()  # a no-op where the cache is shared; a per-process cache dir is filled here
    return code_stores


def _preset_frames(preset: str) -> int:
    from rynnvla_policy.core.presets import get_preset

    return get_preset(preset).model.train_frames


def _check_vae(vae, path: Path, data: RobotDataConfig, action_dim: int) -> None:
    if vae.config.action_dim != action_dim:
        raise ValueError(
            f"ActionVAE {path} has action_dim {vae.config.action_dim}, the dataset {action_dim}"
        )
    spec = read_action_spec(path)
    if spec.get("embodiment", "robot") != "robot":
        raise ValueError(f"ActionVAE {path} was trained on {spec['embodiment']!r} data, not robot")
    if "absolute_dims" in spec and tuple(spec["absolute_dims"]) != tuple(data.absolute_dims):
        raise ValueError(
            f"ActionVAE {path} was trained with absolute_dims {spec['absolute_dims']}, "
            f"data.absolute_dims is {list(data.absolute_dims)}"
        )
    if "normalization" in spec and spec["normalization"] != data.normalization:
        raise ValueError(
            f"ActionVAE {path} was trained with {spec['normalization']!r} normalisation, "
            f"data.normalization is {data.normalization!r}"
        )


def _frame_sampler(sources, stores, cameras):
    """n -> (n, 3, h, w): frames spread evenly over episodes and cameras (codebook fitting)."""

    def sample(count: int) -> torch.Tensor:
        pairs = [(i, e) for i, s in enumerate(sources) for e in range(len(s))]
        per_pair = max(1, -(-count // (len(pairs) * len(cameras))))
        frames = []
        for index, episode in pairs:
            length = sources[index].length(episode)
            ids = np.linspace(0, length - 1, per_pair).round().astype(np.int64)
            for camera in cameras:
                frames.append(stores[index].get(episode, camera, ids))
        pixels = uint8_to_pixels(np.concatenate(frames)[:count])
        return pixels

    return sample


register_stage(
    Stage(
        name="stage3",
        summary="robot VLA fine-tuning on LeRobot v3 datasets (front + wrist + state -> chunk)",
        model_config=VLAModelConfig,
        data_config=RobotDataConfig,
        build=build_stage3,
    )
)
register_preset(
    "tiny",
    TrainConfig(
        stage="stage3",
        model=VLAModelConfig(preset="tiny"),
        data=RobotDataConfig(),
        output_dir="runs/stage3",
        optim=OptimConfig(lr=5e-4, weight_decay=0.05, warmup_steps=50, schedule="cosine"),
        loop=LoopConfig(max_steps=2000, micro_batch_size=8, num_workers=1),
        checkpoint=CheckpointConfig(every_steps=250, keep_last=2),
        log=LogConfig(every_steps=10, preview_every_steps=250),
    ),
)
register_preset(
    "rynnvla-7b",
    TrainConfig(
        stage="stage3",
        model=VLAModelConfig(preset="rynnvla-7b"),
        data=RobotDataConfig(history_frames=4, frame_cache_dir=""),
        output_dir="runs/stage3",
        # Published recipe: AdamW (0.9, 0.95), wd 0.1, lr 2e-5 constant after a short warm-up,
        # grad clip 4, batch 4 per GPU, FSDP full shard bf16 + activation checkpointing.
        optim=OptimConfig(lr=2e-5, weight_decay=0.1, warmup_steps=100, grad_clip=4.0),
        loop=LoopConfig(max_steps=20_000, micro_batch_size=4, num_workers=6, prefetch_factor=4),
        checkpoint=CheckpointConfig(every_steps=1000, keep_last=2),
        dist=DistConfig(strategy="fsdp", precision="bf16", activation_checkpointing=True),
        log=LogConfig(every_steps=10, preview_every_steps=1000),
    ),
)
