"""Loaders (and test writers) for the published RynnVLA-001 / Chameleon file formats.

- RynnVLA-001-7B-Base / -Trajectory: HF ``save_pretrained`` directories (``config.json`` +
  ``model.safetensors`` or shards with ``model.safetensors.index.json``, or a weights-only
  ``pytorch_model.bin``) with HF Chameleon key names. Differences handled here: q_norm / k_norm
  stored as [model_parallel_size, head_dim] are expanded per head like the reference's
  ``repeat_interleave``; a 65536-token vocabulary is resized to 65540 (new rows = mean of the old
  ones); missing ``state_projection`` / ``action_head`` are initialised and reported;
  ``model.vqmodel.*`` and the unused ``action_projection.*`` are skipped and reported.
- Chameleon ``vqgan.ckpt`` + ``vqgan.yaml`` (taming-transformers VQModel): encoder, quant_conv,
  codebook and post_quant_conv keys load into transformers' ChameleonVQVAE; decoder and loss
  keys are skipped.

Nothing is unpickled as arbitrary objects: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save_file

from .action_vae import ActionVAE
from .actions import ActionStatistics
from .checkpoint import Checkpoint, CheckpointError, load_state_checked, read_safetensors
from .config import BackboneConfig, ImageTokenizerConfig, ProcessorConfig, RynnVLAConfig
from .image_tokenizer import ImageTokenizer
from .modeling import RynnVLAModel
from .processor import RynnVLAProcessor
from .text_tokenizer import TextTokenizer

HEAD_KEYS = (
    "state_projection.weight",
    "state_projection.bias",
    "action_head.weight",
    "action_head.bias",
)
SKIPPED_PREFIXES = ("model.vqmodel.", "action_projection.")
SAFETENSORS_INDEX = "model.safetensors.index.json"


@dataclass
class PublishedLoadReport:
    """What a published checkpoint did not provide or what was adapted on load."""

    initialised: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    resized: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    expanded: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.initialised:
            parts.append(f"initialised (not in file): {self.initialised}")
        if self.resized:
            parts.append(f"resized: {self.resized}")
        if self.expanded:
            parts.append(f"q/k norms expanded per head: {len(self.expanded)} tensors")
        if self.skipped:
            parts.append(
                f"skipped: {len(self.skipped)} tensors ({sorted(set(_prefix(k) for k in self.skipped))})"
            )
        return "; ".join(parts) or "loaded as is"


def _prefix(key: str) -> str:
    return next((p for p in SKIPPED_PREFIXES if key.startswith(p)), key)


# ---- reading tensors ---------------------------------------------------------------------
def torch_load_weights_only(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``: plain tensors/containers only, never code."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle raises many types; report them all the same way
        raise CheckpointError(
            f"{path}: cannot read as a weights-only torch file (refusing to unpickle "
            f"arbitrary objects): {err}"
        ) from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(data).__name__}")
    return data


def read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of an HF ``save_pretrained`` directory (single file, shards or .bin)."""
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as err:
            raise CheckpointError(f"{index}: not a safetensors index ({err})") from err
        tensors: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            tensors.update(read_safetensors(directory / shard))
        absent = [k for k in weight_map if k not in tensors]
        if absent:
            raise CheckpointError(f"{index}: keys listed but absent from the shards: {absent[:8]}")
        return tensors
    if (directory / "model.safetensors").is_file():
        return read_safetensors(directory / "model.safetensors")
    if (directory / "pytorch_model.bin").is_file():
        return torch_load_weights_only(directory / "pytorch_model.bin")
    raise CheckpointError(
        f"{directory}: no model.safetensors, {SAFETENSORS_INDEX} or pytorch_model.bin"
    )


# ---- RynnVLA-001 / Chameleon HF directories ----------------------------------------------
def backbone_from_hf_config(data: dict[str, Any], vocab_size: int) -> BackboneConfig:
    """BackboneConfig from an HF Chameleon ``config.json`` (vocabulary forced to ours)."""
    for flag in ("attention_bias", "mlp_bias"):
        if data.get(flag):
            raise CheckpointError(f"config.json: {flag}=true is not a Chameleon/RynnVLA model")
    rope = data.get("rope_parameters") or {}
    scaling = data.get("rope_scaling")
    if scaling or rope.get("rope_type", "default") != "default":
        raise CheckpointError(f"config.json: RoPE scaling {scaling or rope} is not supported")
    try:
        return BackboneConfig(
            vocab_size=vocab_size,
            hidden_size=data["hidden_size"],
            intermediate_size=data["intermediate_size"],
            num_hidden_layers=data["num_hidden_layers"],
            num_attention_heads=data["num_attention_heads"],
            num_key_value_heads=data.get("num_key_value_heads") or data["num_attention_heads"],
            rms_norm_eps=data.get("rms_norm_eps", 1e-5),
            rope_theta=rope.get("rope_theta", data.get("rope_theta", 10000.0)),
            max_position_embeddings=data.get("max_position_embeddings", 4096),
            swin_norm=bool(data.get("swin_norm", False)),
        )
    except KeyError as err:
        raise CheckpointError(f"config.json lacks field {err}") from err


def _expand_qk_norms(
    tensors: dict[str, torch.Tensor], config: BackboneConfig, report: PublishedLoadReport
) -> None:
    """[mp, head_dim] -> [heads, head_dim] by repeating each shard's row over its heads."""
    for key in list(tensors):
        if ".self_attn.q_norm." in key:
            heads = config.num_attention_heads
        elif ".self_attn.k_norm." in key:
            heads = config.num_key_value_heads
        else:
            continue
        value = tensors[key]
        if value.ndim != 2 or value.shape[1] != config.head_dim or heads % value.shape[0]:
            raise CheckpointError(
                f"{key}: shape {tuple(value.shape)} is neither [mp, {config.head_dim}] with mp "
                f"dividing {heads} heads nor [{heads}, {config.head_dim}]"
            )
        if value.shape[0] != heads:
            tensors[key] = value.repeat_interleave(heads // value.shape[0], dim=0)
            report.expanded.append(key)


def _resize_vocab(
    tensors: dict[str, torch.Tensor], vocab_size: int, report: PublishedLoadReport
) -> None:
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        if key not in tensors:
            continue
        value = tensors[key]
        if value.shape[0] == vocab_size:
            continue
        if value.shape[0] != vocab_size - 4:
            raise CheckpointError(
                f"{key}: {value.shape[0]} rows; expected {vocab_size} or {vocab_size - 4} "
                "(before the 4 RynnVLA tokens were added)"
            )
        new_rows = value.float().mean(dim=0, keepdim=True).to(value.dtype).expand(4, -1)
        tensors[key] = torch.cat([value, new_rows], dim=0)
        report.resized[key] = (tuple(value.shape), tuple(tensors[key].shape))


def load_published_model(
    directory: str | Path, base_config: RynnVLAConfig
) -> tuple[RynnVLAModel, PublishedLoadReport]:
    """A RynnVLAModel from a published HF directory.

    ``base_config`` supplies what the HF config does not hold (token layout, image settings,
    losses); the backbone dimensions come from the file and the state dim from the file's
    ``state_dim`` when present. Returns the model (float32, eval) and what was adapted.
    """
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"config file not found: {config_path}")
    try:
        data = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_path} is not valid JSON: {err}") from err
    vocab = base_config.tokens.vocab_size
    backbone = backbone_from_hf_config(data, vocab)
    config = base_config.replace(
        backbone=backbone, state_dim=data.get("state_dim", base_config.state_dim)
    )
    report = PublishedLoadReport()
    tensors = read_hf_weights(directory)
    for key in list(tensors):
        if key.startswith(SKIPPED_PREFIXES):
            report.skipped.append(key)
            del tensors[key]
    if any(k.startswith("action_head.") and k not in HEAD_KEYS for k in tensors):
        raise CheckpointError(
            f"{directory}: the MLP action head variant is not supported (keys "
            f"{sorted(k for k in tensors if k.startswith('action_head.'))[:4]})"
        )
    _expand_qk_norms(tensors, backbone, report)
    _resize_vocab(tensors, vocab, report)
    tensors = {k: v.float() for k, v in tensors.items()}
    model = RynnVLAModel(config)
    missing = load_state_checked(model, tensors, str(directory), allow_missing=HEAD_KEYS)
    report.initialised = missing
    return model.eval(), report


def save_published_model(
    model: RynnVLAModel,
    directory: str | Path,
    vocab_size: int | None = None,
    shard_layers: int | None = None,
    include_heads: bool = True,
) -> Path:
    """Write ``model`` the way the reference trainer's ``save_pretrained`` does (for tests and
    export): Chameleon keys, q/k norms as [1, head_dim] when every head shares them, optional
    65536-row vocabulary (the 4 VLA rows dropped) and optional sharding."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = model.config.backbone
    tensors = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    for key in list(tensors):
        if (
            "_norm." in key
            and ".self_attn." in key
            and bool((tensors[key] == tensors[key][:1]).all())
        ):
            tensors[key] = tensors[key][:1].clone()
    vocab = vocab_size or cfg.vocab_size
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        tensors[key] = tensors[key][:vocab].clone()
    if not include_heads:
        tensors = {k: v for k, v in tensors.items() if k not in HEAD_KEYS}
    hf_config = {
        "architectures": ["ChameleonXLLMXForConditionalGeneration"],
        "model_type": "chameleon",
        "vocab_size": vocab,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "max_position_embeddings": cfg.max_position_embeddings,
        "swin_norm": cfg.swin_norm,
        "model_parallel_size": 1,
        "attention_bias": False,
        "state_dim": model.config.state_dim,
        "z_loss_weight": model.config.loss.z_loss_weight,
        "action_head_type": "one_layer",
        "torch_dtype": "float32",
    }
    (directory / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    if not shard_layers:
        save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
        return directory
    shards: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        layer = int(key.split(".")[2]) if key.startswith("model.layers.") else -1
        shard = 0 if layer < 0 else 1 + layer // shard_layers
        shards.setdefault(f"model-{shard:05d}.safetensors", {})[key] = value
    weight_map = {}
    for name, part in shards.items():
        save_file(part, str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    index = {
        "metadata": {"total_size": sum(v.numel() * 4 for v in tensors.values())},
        "weight_map": weight_map,
    }
    (directory / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return directory


# ---- Chameleon VQGAN ---------------------------------------------------------------------
_VQGAN_KEEP = ("encoder.", "quant_conv.", "quantize.embedding.", "post_quant_conv.")


def image_config_from_vqgan_yaml(
    path: str | Path, short_side: int = 384, crop_multiple: int = 32
) -> ImageTokenizerConfig:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"VQGAN config not found: {path}")
    try:
        params = yaml.safe_load(path.read_text())["model"]["params"]
        dd = params["ddconfig"]
        if dd.get("double_z"):
            raise CheckpointError(f"{path}: double_z=true is not a Chameleon VQGAN")
        return ImageTokenizerConfig(
            codebook_size=params["n_embed"],
            embed_dim=params["embed_dim"],
            latent_channels=dd["z_channels"],
            base_channels=dd["ch"],
            channel_multiplier=tuple(dd["ch_mult"]),
            num_res_blocks=dd["num_res_blocks"],
            attn_resolutions=tuple(dd.get("attn_resolutions") or ()),
            resolution=dd["resolution"],
            short_side=short_side,
            crop_multiple=crop_multiple,
        )
    except (KeyError, TypeError, yaml.YAMLError) as err:
        raise CheckpointError(f"{path}: not a Chameleon VQGAN yaml ({err!r})") from err


def load_chameleon_vqgan(
    ckpt_path: str | Path, yaml_path: str | Path, short_side: int = 384, crop_multiple: int = 32
) -> ImageTokenizer:
    """ImageTokenizer from Chameleon's ``vqgan.ckpt`` (a Lightning ``{"state_dict": ...}`` or a
    bare state dict) and ``vqgan.yaml``."""
    config = image_config_from_vqgan_yaml(yaml_path, short_side, crop_multiple)
    data = torch_load_weights_only(Path(ckpt_path))
    state = data.get("state_dict", data)
    tensors = {k: v for k, v in state.items() if k.startswith(_VQGAN_KEEP)}
    if not tensors:
        raise CheckpointError(f"{ckpt_path}: no encoder/quantize keys (found {list(state)[:5]})")
    tokenizer = ImageTokenizer(config)
    load_state_checked(tokenizer.vqvae, tensors, str(ckpt_path))
    return tokenizer


def save_chameleon_vqgan(
    tokenizer: ImageTokenizer, ckpt_path: str | Path, yaml_path: str | Path
) -> None:
    """Write the taming-transformers layout (for tests): Lightning-style ``state_dict``."""
    cfg = tokenizer.config
    state = {k: v.detach().clone() for k, v in tokenizer.vqvae.state_dict().items()}
    torch.save({"state_dict": state}, ckpt_path)
    params = {
        "embed_dim": cfg.embed_dim,
        "n_embed": cfg.codebook_size,
        "ddconfig": {
            "double_z": False,
            "z_channels": cfg.latent_channels,
            "resolution": cfg.resolution,
            "in_channels": 3,
            "out_ch": 3,
            "ch": cfg.base_channels,
            "ch_mult": list(cfg.channel_multiplier),
            "num_res_blocks": cfg.num_res_blocks,
            "attn_resolutions": list(cfg.attn_resolutions),
            "dropout": 0.0,
        },
    }
    Path(yaml_path).write_text(yaml.safe_dump({"model": {"params": params}}))


# ---- everything together -----------------------------------------------------------------
def assemble_checkpoint(
    *,
    model_dir: str | Path,
    vqgan_ckpt: str | Path,
    vqgan_yaml: str | Path,
    text_tokenizer_json: str | Path,
    statistics_json: str | Path,
    action_vae: ActionVAE,
    features: ProcessorConfig,
    base_config: RynnVLAConfig,
) -> tuple[Checkpoint, PublishedLoadReport]:
    """Our checkpoint from the published parts: a RynnVLA-001 HF directory, Chameleon's VQGAN
    and text tokenizer, the reference statistics JSON and an ActionVAE (e.g. from
    ``ActionVAE.load_reference_state_dict``). Save it with ``checkpoint.save_pretrained``."""
    image = image_config_from_vqgan_yaml(
        vqgan_yaml, base_config.image.short_side, base_config.image.crop_multiple
    )
    base_config = base_config.replace(image=image)
    model, report = load_published_model(model_dir, base_config)
    tokenizer = load_chameleon_vqgan(vqgan_ckpt, vqgan_yaml, image.short_side, image.crop_multiple)
    text = TextTokenizer.from_file(text_tokenizer_json, model.config.tokens)
    statistics = ActionStatistics.load_json(statistics_json)
    processor = RynnVLAProcessor(features, image, model.config.tokens, statistics, text)
    return Checkpoint(model, tokenizer, action_vae.eval(), processor), report
