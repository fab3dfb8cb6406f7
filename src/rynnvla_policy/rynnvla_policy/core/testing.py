"""Helpers for tests and demos of other packages: a complete random-weight tiny checkpoint.

``make_tiny_checkpoint`` writes a directory that ``PolicyRunner.from_pretrained`` loads: the
``tiny`` preset with random (seeded) weights, a BPE trained on the simulator's instructions,
a VQ codebook fitted to synthetic images of the given size (so codes vary with the image) and
random but valid action statistics. Its actions are meaningless; its shapes and timings are real.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .action_vae import ActionVAE, get_action_vae_preset
from .actions import ActionStatistics
from .checkpoint import Checkpoint
from .config import ProcessorConfig
from .image_tokenizer import ImageTokenizer, preprocess_image
from .joints import SO100_JOINT_NAMES
from .modeling import RynnVLAModel
from .presets import get_preset
from .processor import RynnVLAProcessor
from .text_tokenizer import TextTokenizer

SIM_INSTRUCTIONS = (
    "put the green block on the plate",
    "put the strawberry in the bowl",
    "put the pen in the pen holder",
)


def random_statistics(dim: int, rng: np.random.Generator) -> ActionStatistics:
    """Valid statistics of plausible magnitude (radians) for ``dim`` joints."""
    rel_mean = rng.normal(0.0, 0.01, dim)
    rel_std = rng.uniform(0.01, 0.05, dim)
    return ActionStatistics(
        rel_mean_action=rel_mean,
        rel_std_action=rel_std,
        rel_min_action=rel_mean - 2.5 * rel_std,
        rel_max_action=rel_mean + 2.5 * rel_std,
        mean_state=rng.normal(0.0, 0.3, dim),
        std_state=rng.uniform(0.2, 0.6, dim),
    )


def synthetic_images(count: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Blocky random RGB uint8 images (count, H, W, 3): 16 px patches of colour, not noise."""
    height, width = size
    cell = 16
    coarse = rng.integers(0, 256, (count, -(-height // cell), -(-width // cell), 3), np.uint8)
    return coarse.repeat(cell, axis=1).repeat(cell, axis=2)[:, :height, :width]


def make_tiny_checkpoint(
    path: str | Path,
    *,
    seed: int = 0,
    camera_names: Sequence[str] = ("front", "wrist"),
    joint_names: Sequence[str] = SO100_JOINT_NAMES,
    image_size: tuple[int, int] = (96, 128),
    chunk_length: int = 20,
    fps: float = 30.0,
    instructions: Sequence[str] = SIM_INSTRUCTIONS,
) -> Path:
    """Write a random-weight ``tiny`` checkpoint to ``path`` and return it.

    ``image_size`` is the (height, width) of the camera images the codebook is fitted to.
    The last joint is the absolute (gripper) dim; a camera named "wrist" uses the wrist tokens.
    """
    preset = get_preset("tiny")
    dim = len(joint_names)
    features = ProcessorConfig(
        camera_names=tuple(camera_names),
        wrist_cameras=tuple(c for c in camera_names if c == "wrist"),
        joint_names=tuple(joint_names),
        chunk_length=chunk_length,
        fps=fps,
        absolute_dims=(dim - 1,),
    )
    config = preset.model.replace(state_dim=dim)
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RynnVLAModel(config)
        image_tokenizer = ImageTokenizer(config.image)
        vae = ActionVAE(
            get_action_vae_preset(
                preset.action_vae_preset, action_dim=dim, chunk_length=chunk_length
            )
        )
    images = synthetic_images(16, image_size, rng)
    pixels = torch.stack([preprocess_image(img, config.image) for img in images])
    image_tokenizer.fit_codebook(pixels, iterations=5, seed=seed)
    text = TextTokenizer.train(instructions, config.tokens, preset.text_vocab_size)
    processor = RynnVLAProcessor(
        features, config.image, config.tokens, random_statistics(dim, rng), text
    )
    checkpoint = Checkpoint(model.eval(), image_tokenizer, vae.eval(), processor)
    return checkpoint.save_pretrained(path)
