"""ActionVAE: the ACT-style transformer VAE that compresses an action chunk into a latent.

Reference section 6. One VAE per embodiment (robot arm, human wrists); no image backbone.

Encoder (chunk -> latent distribution)::

    [CLS] + Linear(action_dim -> H)(actions)        # (B, 1 + T, H)
    N_enc DETR-style encoder layers                  # fixed sinusoidal positions added to q and k
    Linear(H -> 2 * latent)(CLS output)              # (B, 2 * latent) = [mu || logvar]

Decoder (latent -> chunk), as in the reference implementation::

    memory = Linear(latent -> H)(z)                  # (B, 1, H), one memory token
    memory = N_dec_enc encoder layers over it        # learned position added to q and k
    queries start as copies of the *un-encoded* memory token, one per chunk step  # (B, T, H)
    N_dec decoder layers: learned query embeddings (T, H) added to q and k; in post-norm mode the
        cross-attention attends to [queries ; memory] (a quirk of the reference, kept so its
        checkpoints decode identically)
    final LayerNorm, Linear(H -> action_dim)         # (B, T, action_dim)

Loss: L1 over valid (unmasked) elements, averaged over them, plus ``kl_weight`` times the KL to
N(0, I), summed over latent dims and averaged over the batch. Training samples z with the
reparameterisation trick; in eval mode ``forward`` uses the mean, and ``decode_params`` decodes
the mean unless asked to sample.

Checkpoints: ``save_pretrained(dir)`` writes ``config.json`` + ``model.safetensors``;
``load_reference_state_dict`` reads the reference trainer's raw ``torch.save`` state dicts
(``torch.load(weights_only=True)``) and maps their key names.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_TYPE = "rynnvla_action_vae"
ACTIVATIONS = {"relu": nn.functional.relu, "gelu": nn.functional.gelu}


class ActionVAELoadError(ValueError):
    """A checkpoint file is unreadable or does not match the model (names keys and shapes)."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ActionVAEConfig:
    """ActionVAE dimensions. Defaults are the published RynnVLA-001 ActionVAE (about 72M).

    action_dim: action features per step (6 for an SO-100 arm: 5 joints + gripper).
    chunk_length: steps per chunk T (number of learned decoder queries).
    hidden_dim / num_heads / ffn_dim: transformer width, attention heads, feed-forward width.
    latent_dim: size of z; the encoder outputs 2 * latent_dim numbers, [mu || logvar].
    encoder_layers: layers of the chunk encoder (CLS + actions).
    decoder_encoder_layers: encoder layers over the single latent memory token.
    decoder_layers: decoder layers over the chunk queries.
    dropout: dropout in attention, feed-forward and residuals.
    kl_weight: weight of the KL term in the loss.
    pre_norm: LayerNorm before each sub-layer (False = post-norm, as published).
    activation: feed-forward activation, "relu" (published) or "gelu".
    """

    action_dim: int
    chunk_length: int = 20
    hidden_dim: int = 512
    latent_dim: int = 32
    encoder_layers: int = 4
    decoder_encoder_layers: int = 4
    decoder_layers: int = 7
    num_heads: int = 8
    ffn_dim: int = 3200
    dropout: float = 0.1
    kl_weight: float = 1e-4
    pre_norm: bool = False
    activation: str = "relu"

    def __post_init__(self) -> None:
        positive_ints = (
            "action_dim",
            "chunk_length",
            "hidden_dim",
            "latent_dim",
            "encoder_layers",
            "decoder_encoder_layers",
            "decoder_layers",
            "num_heads",
            "ffn_dim",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ActionVAEConfig.{name} must be a positive int, got {value!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"ActionVAEConfig.hidden_dim ({self.hidden_dim}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ActionVAEConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.kl_weight, int | float) or not 0.0 <= self.kl_weight < float("inf"):
            raise ValueError(
                f"ActionVAEConfig.kl_weight must be finite and >= 0, got {self.kl_weight!r}"
            )
        if not isinstance(self.pre_norm, bool):
            raise ValueError(f"ActionVAEConfig.pre_norm must be a bool, got {self.pre_norm!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"ActionVAEConfig.activation must be one of {sorted(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionVAEConfig:
        """Inverse of ``to_dict``; unknown fields are an error (ignores ``model_type``)."""
        data = dict(data)
        model_type = data.pop("model_type", MODEL_TYPE)
        if model_type != MODEL_TYPE:
            raise ValueError(f"config model_type must be {MODEL_TYPE!r}, got {model_type!r}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ActionVAEConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


ACTION_VAE_PRESETS: dict[str, ActionVAEConfig] = {
    # Published RynnVLA-001 ActionVAE for the 6-D SO-100 arm.
    "rynnvla-7b": ActionVAEConfig(action_dim=6),
    # Trains in a couple of minutes on 2 CPU cores (about 0.8M parameters).
    "tiny": ActionVAEConfig(
        action_dim=6,
        hidden_dim=128,
        num_heads=4,
        ffn_dim=256,
        encoder_layers=2,
        decoder_encoder_layers=1,
        decoder_layers=2,
    ),
}


def get_action_vae_preset(name: str, **overrides: Any) -> ActionVAEConfig:
    """A preset by name, with fields replaced by ``overrides`` (validated)."""
    if name not in ACTION_VAE_PRESETS:
        close = difflib.get_close_matches(name, ACTION_VAE_PRESETS, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise KeyError(
            f"unknown ActionVAE preset {name!r}{hint} (known: {sorted(ACTION_VAE_PRESETS)})"
        )
    known = {field.name for field in dataclasses.fields(ActionVAEConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown ActionVAEConfig field(s) {unknown}; known: {sorted(known)}")
    return dataclasses.replace(ACTION_VAE_PRESETS[name], **overrides)


# --------------------------------------------------------------------------------------------
# Building blocks (DETR-style: positions are added to queries and keys, never to values)
# --------------------------------------------------------------------------------------------
def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """Fixed "Attention is all you need" positions: (num_positions, dim) float32.

    Angle(p, j) = p / 10000^(2 floor(j / 2) / dim); sin on even j, cos on odd j. Computed in
    float64, as the reference does, before rounding to float32.
    """
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    exponent = 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim  # (dim,)
    angle = position / torch.pow(10000.0, exponent)  # (P, dim)
    table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(torch.float32)


def _attend(
    attention: nn.MultiheadAttention,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    return attention(query, key, value, key_padding_mask=key_padding_mask, need_weights=False)[0]


class FeedForward(nn.Module):
    """Linear -> activation -> dropout -> Linear."""

    def __init__(self, config: ActionVAEConfig) -> None:
        super().__init__()
        self.ffn_in = nn.Linear(config.hidden_dim, config.ffn_dim)
        self.ffn_out = nn.Linear(config.ffn_dim, config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.activation = ACTIVATIONS[config.activation]

    def forward(self, x: Tensor) -> Tensor:  # (B, S, H) -> (B, S, H)
        return self.ffn_out(self.dropout(self.activation(self.ffn_in(x))))


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward; ``pos`` is added to queries and keys."""

    def __init__(self, config: ActionVAEConfig) -> None:
        super().__init__()
        hidden = config.hidden_dim
        self.self_attn = nn.MultiheadAttention(
            hidden, config.num_heads, dropout=config.dropout, batch_first=True
        )
        self.ffn = FeedForward(config)
        self.norm_self_attn = nn.LayerNorm(hidden)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.dropout_self_attn = nn.Dropout(config.dropout)
        self.dropout_ffn = nn.Dropout(config.dropout)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, pos: Tensor, padding: Tensor | None = None) -> Tensor:
        # x (B, S, H); pos broadcastable to x; padding (B, S) bool, True = ignore this key.
        if self.pre_norm:
            h = self.norm_self_attn(x)
            x = x + self.dropout_self_attn(_attend(self.self_attn, h + pos, h + pos, h, padding))
            return x + self.dropout_ffn(self.ffn(self.norm_ffn(x)))
        x = x + self.dropout_self_attn(_attend(self.self_attn, x + pos, x + pos, x, padding))
        x = self.norm_self_attn(x)
        return self.norm_ffn(x + self.dropout_ffn(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Self-attention over the chunk queries, cross-attention, feed-forward.

    Post-norm (published): the cross-attention keys / values are the queries *and* the memory,
    ``[q + query_pos ; memory + memory_pos]`` / ``[q ; memory]``, as in the reference code.
    Pre-norm: the cross-attention sees the memory only (also as in the reference code).
    """

    def __init__(self, config: ActionVAEConfig) -> None:
        super().__init__()
        hidden, heads, dropout = config.hidden_dim, config.num_heads, config.dropout
        self.self_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(config)
        self.norm_self_attn = nn.LayerNorm(hidden)
        self.norm_cross_attn = nn.LayerNorm(hidden)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.dropout_self_attn = nn.Dropout(dropout)
        self.dropout_cross_attn = nn.Dropout(dropout)
        self.dropout_ffn = nn.Dropout(dropout)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, memory: Tensor, query_pos: Tensor, memory_pos: Tensor) -> Tensor:
        # x (B, T, H) queries; memory (B, M, H); query_pos (T, H); memory_pos (M, H)
        if self.pre_norm:
            return self._forward_pre(x, memory, query_pos, memory_pos)
        return self._forward_post(x, memory, query_pos, memory_pos)

    def _forward_post(self, x: Tensor, memory: Tensor, query_pos: Tensor, memory_pos: Tensor):
        q = x + query_pos
        x = self.norm_self_attn(x + self.dropout_self_attn(_attend(self.self_attn, q, q, x)))
        q = x + query_pos
        keys = torch.cat([q, memory + memory_pos], dim=1)  # (B, T + M, H)
        values = torch.cat([x, memory], dim=1)  # (B, T + M, H)
        x = self.norm_cross_attn(
            x + self.dropout_cross_attn(_attend(self.cross_attn, q, keys, values))
        )
        return self.norm_ffn(x + self.dropout_ffn(self.ffn(x)))

    def _forward_pre(self, x: Tensor, memory: Tensor, query_pos: Tensor, memory_pos: Tensor):
        h = self.norm_self_attn(x)
        x = x + self.dropout_self_attn(_attend(self.self_attn, h + query_pos, h + query_pos, h))
        h = self.norm_cross_attn(x) + query_pos
        x = x + self.dropout_cross_attn(_attend(self.cross_attn, h, memory + memory_pos, memory))
        return x + self.dropout_ffn(self.ffn(self.norm_ffn(x)))


class ChunkEncoder(nn.Module):
    """Action chunk (B, T, D) -> [mu || logvar] (B, 2 * latent)."""

    def __init__(self, config: ActionVAEConfig) -> None:
        super().__init__()
        hidden = config.hidden_dim
        self.cls_token = nn.Parameter(torch.randn(1, hidden))  # (1, H), init as nn.Embedding
        self.action_proj = nn.Linear(config.action_dim, hidden)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.final_norm = nn.LayerNorm(hidden) if config.pre_norm else None
        self.latent_proj = nn.Linear(hidden, 2 * config.latent_dim)
        # Derived from the config, so not saved; position 0 is the CLS token.
        self.register_buffer(
            "pos_table", sinusoid_table(1 + config.chunk_length, hidden), persistent=False
        )

    def forward(self, actions: Tensor, padding: Tensor | None) -> Tensor:
        # actions (B, T, D); padding (B, T) bool, True = padded step.
        batch = actions.shape[0]
        cls = self.cls_token.expand(batch, 1, -1)  # (B, 1, H)
        x = torch.cat([cls, self.action_proj(actions)], dim=1)  # (B, 1 + T, H)
        if padding is not None:  # the CLS token is never padding
            padding = torch.cat([padding.new_zeros(batch, 1), padding], dim=1)  # (B, 1 + T)
        pos = self.pos_table.to(x.dtype)  # (1 + T, H)
        for layer in self.layers:
            x = layer(x, pos, padding)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return self.latent_proj(x[:, 0])  # (B, 2 * latent)


class ChunkDecoder(nn.Module):
    """Latent z (B, latent) -> action chunk (B, T, D)."""

    def __init__(self, config: ActionVAEConfig) -> None:
        super().__init__()
        hidden = config.hidden_dim
        self.latent_proj = nn.Linear(config.latent_dim, hidden)
        self.memory_pos = nn.Parameter(torch.randn(1, hidden))  # (1, H), init as nn.Embedding
        self.query_embed = nn.Parameter(torch.randn(config.chunk_length, hidden))  # (T, H)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(config) for _ in range(config.decoder_encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(hidden) if config.pre_norm else None
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(config) for _ in range(config.decoder_layers)
        )
        self.final_norm = nn.LayerNorm(hidden)
        self.action_head = nn.Linear(hidden, config.action_dim)
        # The reference initialises its decoder transformer with Xavier-uniform matrices.
        for module in (self.encoder_layers, self.decoder_layers):
            for param in module.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)

    def forward(self, z: Tensor) -> Tensor:  # z (B, latent)
        token = self.latent_proj(z)[:, None, :]  # (B, 1, H)
        memory = token
        for layer in self.encoder_layers:
            memory = layer(memory, self.memory_pos)
        if self.encoder_norm is not None:
            memory = self.encoder_norm(memory)
        x = token.expand(-1, self.query_embed.shape[0], -1)  # (B, T, H)
        for layer in self.decoder_layers:
            x = layer(x, memory, self.query_embed, self.memory_pos)
        return self.action_head(self.final_norm(x))  # (B, T, D)


# --------------------------------------------------------------------------------------------
# Reference key layout
# --------------------------------------------------------------------------------------------
# Names of the parts inside one layer: ours -> the reference's.
_ENCODER_LAYER_PARTS = {
    "ffn.ffn_in.": "linear1.",
    "ffn.ffn_out.": "linear2.",
    "norm_self_attn.": "norm1.",
    "norm_ffn.": "norm2.",
}
_DECODER_LAYER_PARTS = {
    "cross_attn.": "multihead_attn.",
    "ffn.ffn_in.": "linear1.",
    "ffn.ffn_out.": "linear2.",
    "norm_self_attn.": "norm1.",
    "norm_cross_attn.": "norm2.",
    "norm_ffn.": "norm3.",
}
# Our module names -> the reference ActionVAE's, tried in order (first match wins), with the
# table that renames the parts inside a layer.
_PREFIXES: tuple[tuple[str, str, dict[str, str]], ...] = (
    (r"encoder\.cls_token$", "cls_embed.weight", {}),
    (r"encoder\.action_proj\.", "encoder_action_proj.", {}),
    (r"encoder\.latent_proj\.", "latent_proj.", {}),
    (r"encoder\.final_norm\.", "encoder.norm.", {}),
    (r"encoder\.layers\.(\d+)\.", r"encoder.layers.\1.", _ENCODER_LAYER_PARTS),
    (r"decoder\.latent_proj\.", "latent_out_proj.", {}),
    (r"decoder\.memory_pos$", "pos.weight", {}),
    (r"decoder\.query_embed$", "query_embed.weight", {}),
    (r"decoder\.encoder_norm\.", "transformer.encoder.norm.", {}),
    (
        r"decoder\.encoder_layers\.(\d+)\.",
        r"transformer.encoder.layers.\1.",
        _ENCODER_LAYER_PARTS,
    ),
    (
        r"decoder\.decoder_layers\.(\d+)\.",
        r"transformer.decoder.layers.\1.",
        _DECODER_LAYER_PARTS,
    ),
    (r"decoder\.final_norm\.", "transformer.decoder.norm.", {}),
    (r"decoder\.action_head\.", "action_head.", {}),
)


def to_reference_key(key: str) -> str:
    """Our parameter name -> the reference ActionVAE's state_dict key."""
    for pattern, replacement, parts in _PREFIXES:
        match = re.match(pattern, key)
        if match is None:
            continue
        rest = key[match.end() :]
        for ours, theirs in parts.items():
            if rest.startswith(ours):
                rest = theirs + rest[len(ours) :]
                break
        return match.expand(replacement) + rest
    raise KeyError(f"no reference name for ActionVAE parameter {key!r}")


def _reference_extras(config: ActionVAEConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of the reference-only keys: heads its loss and decoding never use, and the
    sinusoid buffer. Accepted (shape-checked) and dropped on load."""
    hidden, dim = config.hidden_dim, config.action_dim
    return {
        "encoder_joint_proj.weight": (hidden, dim),
        "encoder_joint_proj.bias": (hidden,),
        "is_pad_head.weight": (1, hidden),
        "is_pad_head.bias": (1,),
        "pos_table": (1, 1 + config.chunk_length, hidden),
    }


def _describe_problems(source: str, problems: list[str]) -> str:
    shown = "; ".join(problems[:12])
    more = f"; ... and {len(problems) - 12} more" if len(problems) > 12 else ""
    return f"{source}: {shown}{more}"


def _check_tensors(
    expected: dict[str, tuple[int, ...]],
    given: dict[str, Any],
    source: str,
    optional: dict[str, tuple[int, ...]] | None = None,
) -> None:
    """Every expected key present with its shape, no unknown keys, floating and finite values."""
    optional = optional or {}
    problems = []
    for key, shape in expected.items():
        if key not in given:
            problems.append(f"missing key {key!r} (model expects shape {shape})")
    for key, value in given.items():
        shape = expected.get(key, optional.get(key))
        if shape is None:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            problems.append(f"unexpected key {key!r} (checkpoint shape {got})")
        elif not isinstance(value, Tensor):
            problems.append(f"key {key!r} is a {type(value).__name__}, not a tensor")
        elif tuple(value.shape) != shape:
            problems.append(
                f"key {key!r}: checkpoint shape {tuple(value.shape)} != model shape {shape}"
            )
        elif not value.is_floating_point() or not torch.isfinite(value).all():
            problems.append(f"key {key!r} is not finite floating point (dtype {value.dtype})")
    if problems:
        raise ActionVAELoadError(_describe_problems(source, problems))


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
class ActionVAE(nn.Module):
    """Transformer VAE over action chunks (see module docstring)."""

    def __init__(self, config: ActionVAEConfig) -> None:
        super().__init__()
        if not isinstance(config, ActionVAEConfig):
            raise TypeError(f"config must be ActionVAEConfig, got {type(config).__name__}")
        self.config = config
        self.encoder = ChunkEncoder(config)
        self.decoder = ChunkDecoder(config)

    # ---- input checks ----
    def _check_actions(self, actions: Tensor, mask: Tensor | None) -> Tensor:
        cfg = self.config
        expected = (cfg.chunk_length, cfg.action_dim)
        if not isinstance(actions, Tensor) or actions.ndim != 3 or actions.shape[1:] != expected:
            got = tuple(actions.shape) if isinstance(actions, Tensor) else type(actions).__name__
            raise ValueError(
                f"actions must be a (B, {expected[0]}, {expected[1]}) tensor, got {got}"
            )
        if mask is not None and (
            not isinstance(mask, Tensor)
            or mask.dtype != torch.bool
            or tuple(mask.shape) != tuple(actions.shape[:2])
        ):
            got = (mask.dtype, tuple(mask.shape)) if isinstance(mask, Tensor) else type(mask)
            raise ValueError(
                f"mask must be a bool tensor of shape {tuple(actions.shape[:2])}, got {got}"
            )
        return actions.to(self.encoder.action_proj.weight.dtype)

    def _check_last_dim(self, name: str, x: Tensor, size: int) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a (B, {size}) tensor, got {got}")
        return x.to(self.decoder.latent_proj.weight.dtype)

    # ---- API ----
    def encode(self, actions: Tensor, mask: Tensor | None = None) -> Tensor:
        """actions (B, T, D), mask (B, T) bool with True = valid step -> [mu || logvar] (B, 2L)."""
        actions = self._check_actions(actions, mask)
        return self.encoder(actions, None if mask is None else ~mask)

    def decode(self, z: Tensor) -> Tensor:
        """z (B, latent) -> normalised relative chunk (B, T, D)."""
        return self.decoder(self._check_last_dim("z", z, self.config.latent_dim))

    def decode_params(
        self, params: Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """[mu || logvar] (B, 2L) -> chunk (B, T, D), from the mean unless ``sample``."""
        params = self._check_last_dim("params", params, 2 * self.config.latent_dim)
        mu, logvar = params.chunk(2, dim=-1)  # (B, L) each
        if not sample:
            return self.decoder(mu)
        # Draw on the generator's device (a CPU generator may drive a GPU model), then move.
        device = generator.device if generator is not None else mu.device
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=device)
        noise = noise.to(mu.device)
        return self.decoder(mu + noise * torch.exp(0.5 * logvar))

    def forward(self, actions: Tensor, mask: Tensor | None = None) -> tuple[Tensor, dict]:
        """Training loss: masked L1 (mean over valid elements) + kl_weight * KL.

        Samples z in training mode, uses the mean in eval mode. Returns ``(loss, metrics)``
        with float metrics ``loss``, ``l1``, ``kl``. ``mask`` (B, T) is True on valid steps.
        (The reference trainer divides the masked L1 sum by *all* elements, which down-weights
        padded chunks; we average over the valid ones, as the published loss describes.)
        """
        params = self.encode(actions, mask)  # (B, 2L)
        actions = actions.to(params.dtype)
        mu, logvar = params.chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        error = (self.decoder(z) - actions).abs()  # (B, T, D)
        if mask is None:
            l1 = error.mean()
        else:
            valid = mask[..., None].expand_as(error)
            if not valid.any():
                raise ValueError("mask marks no valid step in the whole batch")
            l1 = error[valid].mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(dim=-1).mean()
        loss = l1 + self.config.kl_weight * kl
        return loss, {"loss": loss.item(), "l1": l1.item(), "kl": kl.item()}

    # ---- checkpoints (ours) ----
    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"model_type": MODEL_TYPE, **self.config.to_dict()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        tensors = {key: value.detach().contiguous().cpu() for key, value in self._weights().items()}
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, map_location: str | torch.device = "cpu"
    ) -> ActionVAE:
        """Load a ``save_pretrained`` directory; the model is returned in eval mode, in the
        saved dtype when all weights share one (e.g. bf16), else float32."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileNotFoundError(f"ActionVAE checkpoint file not found: {path}")
        try:
            config = ActionVAEConfig.from_dict(json.loads(config_path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ActionVAELoadError(f"{config_path}: invalid ActionVAE config: {exc}") from exc
        try:
            tensors = load_file(str(weights_path), device="cpu")
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise ActionVAELoadError(f"{weights_path}: unreadable safetensors file: {exc}") from exc
        model = cls(config)
        dtypes = {tensor.dtype for tensor in tensors.values()}
        if len(dtypes) == 1 and next(iter(dtypes)).is_floating_point:
            model = model.to(next(iter(dtypes)))
        model._load_checked(tensors, str(weights_path))
        return model.to(map_location).eval()

    # ---- checkpoints (reference trainer) ----
    @classmethod
    def load_reference_state_dict(
        cls, path: str | Path, config: ActionVAEConfig, map_location: str | torch.device = "cpu"
    ) -> ActionVAE:
        """Load a reference ActionVAE ``torch.save(state_dict)`` file (weights only).

        Keys are mapped from the reference names (``cls_embed.weight``, ``transformer.decoder
        .layers.N.multihead_attn...``); a DDP ``module.`` prefix is stripped. The unused
        reference heads (``encoder_joint_proj``, ``is_pad_head``) and the ``pos_table`` buffer
        are optional; the buffer must equal ours if present. Returned in eval mode.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"reference ActionVAE state_dict not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for corrupt or unsafe pickles
            raise ActionVAELoadError(
                f"{path}: cannot read as a weights-only state_dict: {exc}"
            ) from exc
        if not isinstance(state, dict):
            raise ActionVAELoadError(f"{path}: expected a state_dict, got {type(state).__name__}")
        if state and all(str(key).startswith("module.") for key in state):
            state = {key[len("module.") :]: value for key, value in state.items()}
        model = cls(config)
        weights = model._weights()
        ours = {to_reference_key(key): key for key in weights}  # reference name -> our name
        expected = {ref: tuple(weights[key].shape) for ref, key in ours.items()}
        _check_tensors(expected, state, str(path), optional=_reference_extras(config))
        if "pos_table" in state and not torch.allclose(
            state["pos_table"][0].float(), model.encoder.pos_table, atol=1e-5
        ):
            raise ActionVAELoadError(f"{path}: key 'pos_table' differs from the sinusoid table")
        model.load_state_dict({key: state[ref] for ref, key in ours.items()})
        return model.to(map_location).eval()

    def reference_state_dict(self) -> dict[str, Tensor]:
        """Weights in the reference key layout, loadable by the reference ActionVAE (strict).

        The reference-only heads it never uses are written as zeros.
        """
        state = {
            to_reference_key(key): value.detach().clone() for key, value in self._weights().items()
        }
        weight = self.encoder.action_proj.weight
        for key, shape in _reference_extras(self.config).items():
            state[key] = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        state["pos_table"] = self.encoder.pos_table[None].detach().clone()
        return state

    # ---- helpers ----
    def _weights(self) -> dict[str, Tensor]:
        return self.state_dict()

    def _load_checked(self, tensors: dict[str, Tensor], source: str) -> None:
        expected = {key: tuple(value.shape) for key, value in self._weights().items()}
        _check_tensors(expected, tensors, source)
        self.load_state_dict(tensors)

    def num_parameters(self) -> int:
        return sum(param.numel() for param in self.parameters())


__all__ = [
    "ACTION_VAE_PRESETS",
    "ActionVAE",
    "ActionVAEConfig",
    "ActionVAELoadError",
    "get_action_vae_preset",
    "sinusoid_table",
    "to_reference_key",
]
