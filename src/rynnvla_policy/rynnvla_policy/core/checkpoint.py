"""Our checkpoint directory (an HF-style folder) and the safe tensor-loading helpers.

Layout::

    config.json            RynnVLAConfig (+ "format")
    model.safetensors      backbone + lm_head + state_projection + action_head
    processor.json         features, image preprocessing, token layout, statistics
    tokenizer.json         text BPE (Chameleon text_tokenizer.json format)
    action_vae/            ActionVAE (config.json, model.safetensors)
    image_tokenizer/       ChameleonVQVAE encoder + codebook (config.json, model.safetensors)

Nothing is unpickled: weights are safetensors. Every mismatch (missing or unexpected key, wrong
shape, features that disagree between parts) is an error naming the key, shape or field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .action_vae import ActionVAE
from .config import ConfigError, ImageTokenizerConfig, RynnVLAConfig
from .image_tokenizer import ImageTokenizer
from .modeling import RynnVLAModel
from .processor import RynnVLAProcessor

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ACTION_VAE_DIR = "action_vae"
IMAGE_TOKENIZER_DIR = "image_tokenizer"
MODEL_FORMAT = "rynnvla/1"
IMAGE_TOKENIZER_FORMAT = "rynnvla_image_tokenizer/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not match the model."""


# ---- tensors ------------------------------------------------------------------------------
def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable safetensors file: {err}") from err


def write_safetensors(module: nn.Module, path: Path) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def load_state_checked(
    module: nn.Module, tensors: dict[str, torch.Tensor], source: str, allow_missing: tuple = ()
) -> list[str]:
    """Copy ``tensors`` into ``module`` after checking names and shapes; returns the keys of
    ``allow_missing`` that were absent (left as initialised)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    not_allowed = [k for k in missing if k not in allow_missing]
    unexpected = [k for k in tensors if k not in expected]
    shapes = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)
    ]
    problems = []
    if not_allowed:
        problems.append(f"missing keys {not_allowed[:8]}{' ...' if len(not_allowed) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    if shapes:
        problems.append("shape mismatch " + "; ".join(shapes[:8]))
    if problems:
        raise CheckpointError(f"{source}: " + " | ".join(problems))
    module.load_state_dict(tensors, strict=False)
    return missing


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"config file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err


def _config_from(path: Path, cls: type, fmt: str) -> Any:
    data = _read_json(path)
    found = data.pop("format", None)
    if found != fmt:
        raise CheckpointError(f"{path}: format {found!r}, expected {fmt!r}")
    try:
        return cls.from_dict(data)
    except (ConfigError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from err


# ---- image tokenizer ----------------------------------------------------------------------
def save_image_tokenizer(tokenizer: ImageTokenizer, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": IMAGE_TOKENIZER_FORMAT, **tokenizer.config.to_dict()}
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    write_safetensors(tokenizer.vqvae, directory / WEIGHTS_NAME)


def load_image_tokenizer(directory: Path) -> ImageTokenizer:
    config = _config_from(directory / CONFIG_NAME, ImageTokenizerConfig, IMAGE_TOKENIZER_FORMAT)
    tokenizer = ImageTokenizer(config)
    tensors = read_safetensors(directory / WEIGHTS_NAME)
    load_state_checked(tokenizer.vqvae, tensors, str(directory / WEIGHTS_NAME))
    return tokenizer


# ---- whole checkpoint ---------------------------------------------------------------------
@dataclass
class Checkpoint:
    """Every part of a RynnVLA checkpoint, checked for agreement."""

    model: RynnVLAModel
    image_tokenizer: ImageTokenizer
    action_vae: ActionVAE
    processor: RynnVLAProcessor

    def __post_init__(self) -> None:
        check_consistency(self.model.config, self.image_tokenizer, self.action_vae, self.processor)

    def save_pretrained(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"format": MODEL_FORMAT, **self.model.config.to_dict()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        write_safetensors(self.model, directory / WEIGHTS_NAME)
        self.processor.save_pretrained(directory)
        self.action_vae.save_pretrained(directory / ACTION_VAE_DIR)
        save_image_tokenizer(self.image_tokenizer, directory / IMAGE_TOKENIZER_DIR)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Checkpoint:
        """Load on CPU in float32 (callers move / cast)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"checkpoint directory not found: {directory}")
        config = _config_from(directory / CONFIG_NAME, RynnVLAConfig, MODEL_FORMAT)
        model = RynnVLAModel(config)
        load_state_checked(
            model, read_safetensors(directory / WEIGHTS_NAME), str(directory / WEIGHTS_NAME)
        )
        processor = RynnVLAProcessor.from_pretrained(directory)
        try:
            action_vae = ActionVAE.from_pretrained(directory / ACTION_VAE_DIR)
        except (FileNotFoundError, ValueError) as err:
            raise CheckpointError(f"{directory / ACTION_VAE_DIR}: {err}") from err
        image_tokenizer = load_image_tokenizer(directory / IMAGE_TOKENIZER_DIR)
        return cls(model.eval(), image_tokenizer, action_vae.eval(), processor)


def check_consistency(
    config: RynnVLAConfig,
    image_tokenizer: ImageTokenizer,
    action_vae: ActionVAE,
    processor: RynnVLAProcessor,
) -> None:
    """All parts of a checkpoint describe the same features; else a CheckpointError."""
    vae = action_vae.config
    features = processor.config
    checks = [
        (
            "processor token layout",
            processor.tokens == config.tokens,
            f"{processor.tokens} vs model {config.tokens}",
        ),
        (
            "processor image settings",
            processor.image == config.image,
            f"{processor.image} vs model {config.image}",
        ),
        (
            "image tokenizer config",
            image_tokenizer.config == config.image,
            f"{image_tokenizer.config} vs model {config.image}",
        ),
        (
            "state_dim",
            features.state_dim == config.state_dim,
            f"processor joints {features.state_dim} vs model state_dim {config.state_dim}",
        ),
        (
            "action_latent_dim",
            config.action_latent_dim == 2 * vae.latent_dim,
            f"model head {config.action_latent_dim} vs 2 x ActionVAE latent {vae.latent_dim}",
        ),
        (
            "chunk_length",
            vae.chunk_length == features.chunk_length,
            f"ActionVAE {vae.chunk_length} vs processor {features.chunk_length}",
        ),
        (
            "action_dim",
            vae.action_dim == features.action_dim,
            f"ActionVAE {vae.action_dim} vs processor {features.action_dim}",
        ),
    ]
    for name, ok, detail in checks:
        if not ok:
            raise CheckpointError(f"checkpoint parts disagree on {name}: {detail}")
