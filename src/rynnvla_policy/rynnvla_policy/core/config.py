"""Configuration dataclasses of the RynnVLA-001 model core.

Every config is a frozen dataclass that validates itself in ``__post_init__``; an error names the
field and the bad value. ``to_dict`` / ``from_dict`` give the JSON form stored in checkpoints
(unknown keys are rejected so a typo in a YAML override is never silently ignored).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from transformers import ChameleonConfig

from .joints import SO100_JOINT_NAMES

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration field holds an invalid value."""


def _require(condition: bool, cls: object, field_name: str, value: object, why: str) -> None:
    if not condition:
        raise ConfigError(f"{type(cls).__name__}.{field_name}={value!r}: {why}")


def _positive(cfg: object, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        _require(isinstance(value, int) and value > 0, cfg, name, value, "must be a positive int")


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``; nested dataclass fields are built recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        default = known[name].default_factory  # type: ignore[misc]
        nested = default() if default is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(nested) and isinstance(value, dict):
            value = _from_dict(type(nested), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


class _Serialisable:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return _from_dict(cls, data)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class TokenLayout(_Serialisable):
    """Where every kind of token lives in the vocabulary.

    Defaults are the published RynnVLA-001 ids (Chameleon vocabulary 65536 + 4 new tokens).
    A VQ code ``k`` has token id ``image_code_offset + k``; an image side of ``n`` pixels is
    written as the size token ``size_token_base + n // crop_multiple``.
    """

    bos_id: int = 0
    pad_id: int = 1
    image_code_offset: int = 4
    codebook_size: int = 8192
    image_end_id: int = 8196  # <eoss>
    image_start_id: int = 8197  # <racm3:break>
    newline_id: int = 8803  # <reserved08799>
    size_token_base: int = 8804  # <reserved08800>
    max_size_grids: int = 64
    action_id: int = 65536
    wrist_start_id: int = 65537
    wrist_end_id: int = 65538
    state_id: int = 65539
    vocab_size: int = 65540

    def __post_init__(self) -> None:
        _positive(self, "codebook_size", "max_size_grids", "vocab_size")
        named = {
            "bos_id": self.bos_id,
            "pad_id": self.pad_id,
            "image_end_id": self.image_end_id,
            "image_start_id": self.image_start_id,
            "newline_id": self.newline_id,
            "action_id": self.action_id,
            "wrist_start_id": self.wrist_start_id,
            "wrist_end_id": self.wrist_end_id,
            "state_id": self.state_id,
        }
        for name, value in named.items():
            _require(0 <= value < self.vocab_size, self, name, value, "must be in [0, vocab_size)")
            _require(not self.is_image_code(value), self, name, value, "collides with image codes")
        seen: dict[int, str] = {}
        for name, value in named.items():
            if name != "pad_id" and value in seen:
                raise ConfigError(f"TokenLayout.{name}={value} collides with {seen[value]}")
            seen[value] = name
        last_code = self.image_code_offset + self.codebook_size - 1
        _require(
            last_code < self.vocab_size,
            self,
            "codebook_size",
            self.codebook_size,
            "image codes run past vocab_size",
        )
        last_size = self.size_token_base + self.max_size_grids
        _require(
            last_size < self.vocab_size,
            self,
            "size_token_base",
            self.size_token_base,
            "size tokens run past vocab_size",
        )

    def is_image_code(self, token_id: int) -> bool:
        return self.image_code_offset <= token_id < self.image_code_offset + self.codebook_size

    def size_token(self, n_grids: int) -> int:
        if not 0 < n_grids <= self.max_size_grids:
            raise ValueError(f"image side of {n_grids} grids outside (0, {self.max_size_grids}]")
        return self.size_token_base + n_grids

    def camera_delimiters(self, is_wrist: bool) -> tuple[int, int]:
        """(start, end) ids of an image block: the wrist camera has its own pair."""
        if is_wrist:
            return self.wrist_start_id, self.wrist_end_id
        return self.image_start_id, self.image_end_id


@dataclass(frozen=True)
class BackboneConfig(_Serialisable):
    """The Chameleon decoder (transformers' ChameleonDecoderLayer stack). Defaults: Chameleon-7B."""

    vocab_size: int = 65540
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = 32
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position_embeddings: int = 16384
    residual_dropout: float = 0.0  # dropout on the attention / MLP output before each residual add
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    swin_norm: bool = False

    def __post_init__(self) -> None:
        _positive(
            self,
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
        )
        _require(
            self.hidden_size % self.num_attention_heads == 0,
            self,
            "hidden_size",
            self.hidden_size,
            f"not divisible by num_attention_heads={self.num_attention_heads}",
        )
        _require(
            self.num_attention_heads % self.num_key_value_heads == 0,
            self,
            "num_key_value_heads",
            self.num_key_value_heads,
            f"must divide num_attention_heads={self.num_attention_heads}",
        )
        for name in ("residual_dropout", "attention_dropout"):
            value = getattr(self, name)
            _require(0.0 <= value < 1.0, self, name, value, "must be in [0, 1)")
        _require(self.rms_norm_eps > 0, self, "rms_norm_eps", self.rms_norm_eps, "must be > 0")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_chameleon_config(self, attn_implementation: str = "sdpa") -> ChameleonConfig:
        """The transformers ChameleonConfig for the decoder layers (no VQ model inside)."""
        config = ChameleonConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            rms_norm_eps=self.rms_norm_eps,
            max_position_embeddings=self.max_position_embeddings,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range,
            swin_norm=self.swin_norm,
            model_parallel_size=1,
            tie_word_embeddings=False,
        )
        config._attn_implementation = attn_implementation
        return config


@dataclass(frozen=True)
class ImageTokenizerConfig(_Serialisable):
    """Chameleon VQGAN (transformers ChameleonVQVAE encoder + codebook) and its preprocessing.

    Defaults: the published tokenizer (x16 downsampling, codebook 8192, short side 384 bicubic,
    top-left crop to multiples of 32).
    """

    codebook_size: int = 8192
    embed_dim: int = 256
    latent_channels: int = 256
    base_channels: int = 128
    channel_multiplier: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = ()
    resolution: int = 512
    short_side: int = 384
    crop_multiple: int = 32

    def __post_init__(self) -> None:
        _positive(
            self,
            "codebook_size",
            "embed_dim",
            "latent_channels",
            "base_channels",
            "num_res_blocks",
            "resolution",
            "short_side",
            "crop_multiple",
        )
        _require(
            len(self.channel_multiplier) >= 1,
            self,
            "channel_multiplier",
            self.channel_multiplier,
            "needs at least one level",
        )
        for mult in self.channel_multiplier:
            _require(
                (self.base_channels * mult) % 32 == 0,
                self,
                "channel_multiplier",
                self.channel_multiplier,
                "base_channels * multiplier must be a multiple of 32 (GroupNorm with 32 groups)",
            )
        _require(
            self.crop_multiple % self.downsample == 0,
            self,
            "crop_multiple",
            self.crop_multiple,
            f"must be a multiple of the downsampling {self.downsample}",
        )
        _require(
            self.short_side >= self.crop_multiple,
            self,
            "short_side",
            self.short_side,
            f"must be >= crop_multiple={self.crop_multiple}",
        )

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.channel_multiplier) - 1)


@dataclass(frozen=True)
class LossConfig(_Serialisable):
    """Training loss weights and label options (defaults: published stage-3 recipe, fixed)."""

    ce_weight: float = 1.0
    action_weight: float = 1.0
    z_loss_weight: float = 1e-5
    condition_frames: int = 1  # image tokens of the first N frames are inputs only
    supervise_repeated_instruction: bool = False  # reference defect; off by default

    def __post_init__(self) -> None:
        for name in ("ce_weight", "action_weight", "z_loss_weight"):
            value = getattr(self, name)
            _require(value >= 0, self, name, value, "must be >= 0")
        _require(
            self.condition_frames >= 0,
            self,
            "condition_frames",
            self.condition_frames,
            "must be >= 0",
        )


@dataclass(frozen=True)
class RynnVLAConfig(_Serialisable):
    """Whole VLA model: backbone, token layout, image tokenizer, heads, frame layout, losses."""

    name: str = "rynnvla-7b"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    tokens: TokenLayout = field(default_factory=TokenLayout)
    image: ImageTokenizerConfig = field(default_factory=ImageTokenizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    state_dim: int = 6
    action_latent_dim: int = 64  # action head output = ActionVAE [mu || logvar]
    train_frames: int = 4  # K consecutive frames per stage-3 training sample
    inference_history: int = 1  # frames in the prompt at inference (reference: 1)
    instruction_every_frame: bool = True  # [instr] before every frame (else only the first)
    # learned (row, column, wrist) embeddings added to image code tokens (image_positions.py);
    # the published 7B weights have none
    image_position_embeddings: bool = False

    def __post_init__(self) -> None:
        _positive(self, "state_dim", "action_latent_dim", "train_frames", "inference_history")
        _require(
            self.action_latent_dim % 2 == 0,
            self,
            "action_latent_dim",
            self.action_latent_dim,
            "must be even ([mu || logvar])",
        )
        _require(
            self.inference_history <= self.train_frames,
            self,
            "inference_history",
            self.inference_history,
            f"must be <= train_frames={self.train_frames}",
        )
        _require(
            self.tokens.vocab_size == self.backbone.vocab_size,
            self,
            "tokens.vocab_size",
            self.tokens.vocab_size,
            f"!= backbone.vocab_size={self.backbone.vocab_size}",
        )
        _require(
            self.tokens.codebook_size == self.image.codebook_size,
            self,
            "tokens.codebook_size",
            self.tokens.codebook_size,
            f"!= image.codebook_size={self.image.codebook_size}",
        )


@dataclass(frozen=True)
class ProcessorConfig(_Serialisable):
    """Robot-facing features: cameras, joints, chunking and action normalisation."""

    camera_names: tuple[str, ...] = ("front", "wrist")
    wrist_cameras: tuple[str, ...] = ("wrist",)  # blocks wrapped by WRIST_START / WRIST_END
    joint_names: tuple[str, ...] = SO100_JOINT_NAMES
    chunk_length: int = 20
    fps: float = 30.0
    absolute_dims: tuple[int, ...] = (5,)
    normalization: str = "zscore"

    def __post_init__(self) -> None:
        _require(
            len(self.camera_names) >= 1,
            self,
            "camera_names",
            self.camera_names,
            "needs at least one camera",
        )
        _require(
            len(set(self.camera_names)) == len(self.camera_names),
            self,
            "camera_names",
            self.camera_names,
            "has duplicates",
        )
        for cam in self.wrist_cameras:
            _require(
                cam in self.camera_names,
                self,
                "wrist_cameras",
                self.wrist_cameras,
                f"{cam!r} is not in camera_names={self.camera_names}",
            )
        _require(len(self.joint_names) >= 1, self, "joint_names", self.joint_names, "is empty")
        _positive(self, "chunk_length")
        _require(self.fps > 0, self, "fps", self.fps, "must be > 0")
        for dim in self.absolute_dims:
            _require(
                0 <= dim < self.action_dim,
                self,
                "absolute_dims",
                self.absolute_dims,
                f"dim {dim} outside [0, {self.action_dim})",
            )
        _require(
            self.normalization in ("zscore", "percentile"),
            self,
            "normalization",
            self.normalization,
            "must be 'zscore' or 'percentile'",
        )

    @property
    def state_dim(self) -> int:
        return len(self.joint_names)

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)
