"""RynnVLA-001 model: the transformers Chameleon decoder plus the VLA heads.

Names follow the paper and the published checkpoints (HF Chameleon keys):
``model.embed_tokens``, ``model.layers.{i}.*``, ``model.norm``, ``lm_head``,
``state_projection`` (normalised joint state -> the STATE token's input embedding) and
``action_head`` (hidden state at STATE -> ActionVAE ``[mu || logvar]``).

The decoder layers, RMSNorm, rotary embedding and causal-mask construction are transformers'
own (``ChameleonDecoderLayer`` & co.); this file only wires them and adds the heads and losses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.models.chameleon.modeling_chameleon import (
    ChameleonDecoderLayer,
    ChameleonRMSNorm,
    ChameleonRotaryEmbedding,
    ChameleonSwinDecoderLayer,
    apply_rotary_pos_emb,
)

from .config import BackboneConfig, RynnVLAConfig
from .image_positions import ImagePositionEmbedding

IGNORE_INDEX = -100
_LAYER_INPUTS_MEMO_SIZE = 16


@dataclass(frozen=True)
class LayerInputs:
    """What every decoder layer takes besides the hidden states, for S new tokens."""

    position_ids: torch.Tensor  # (B, S)
    mask: torch.Tensor | None  # the attention implementation's mask; None = plain causal
    cos: torch.Tensor  # (B, S, head_dim) rotary tables
    sin: torch.Tensor

    @property
    def rotary(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos, self.sin

    def rotary_slice(self, positions: slice) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos[:, positions], self.sin[:, positions]


class TokenBookkeepingError(ValueError):
    """Special tokens in a sequence do not match the tensors meant to fill or read them."""


class ChameleonBackbone(nn.Module):
    """Token embedding + transformers Chameleon decoder layers + final RMSNorm.

    Residual dropout (stage-3 fine-tuning) is applied to the attention and MLP outputs before
    each residual add, through forward hooks so the transformers layers stay untouched.
    """

    def __init__(self, config: BackboneConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        self.config = config
        self.hf_config = config.to_chameleon_config(attn_implementation)
        layer_cls = ChameleonSwinDecoderLayer if config.swin_norm else ChameleonDecoderLayer
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            [layer_cls(self.hf_config, i) for i in range(config.num_hidden_layers)]
        )
        self.norm = ChameleonRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = ChameleonRotaryEmbedding(config=self.hf_config)
        self.residual_dropout = nn.Dropout(config.residual_dropout)
        self._layer_inputs_memo: dict[tuple, LayerInputs] = {}
        if config.residual_dropout > 0:
            for layer in self.layers:
                layer.self_attn.register_forward_hook(self._drop_attention_output)
                layer.mlp.register_forward_hook(self._drop_mlp_output)

    def _drop_attention_output(self, _module, _inputs, output):
        attn_output, attn_weights = output
        return self.residual_dropout(attn_output), attn_weights

    def _drop_mlp_output(self, _module, _inputs, output):
        return self.residual_dropout(output)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute each decoder layer in backward (transformers' GradientCheckpointingLayer
        mechanism; RNG state is preserved so residual dropout replays identically)."""
        for layer in self.layers:
            layer.gradient_checkpointing = enabled
            layer._gradient_checkpointing_func = functools.partial(
                torch.utils.checkpoint.checkpoint, use_reentrant=False
            )

    def set_attn_implementation(self, name: str) -> None:
        """ "sdpa" (default) or "eager"; shared by every layer through the config object."""
        self.hf_config._attn_implementation = name

    def forward(
        self,
        inputs_embeds: torch.Tensor,  # (B, S, H)
        position_ids: torch.Tensor | None = None,  # (B, S)
        attention_mask: torch.Tensor | None = None,  # (B, past + S), 1 = real token
        past_key_values: Cache | None = None,
        last_position_only: bool = False,
    ) -> torch.Tensor:
        """Last hidden states (B, S, H) BEFORE the final norm (callers norm what they read).

        ``last_position_only`` (inference, no padding): the final layer only needs keys and
        values of the other positions, so it computes those and runs the transformers layer on
        the last position alone; returns (B, 1, H), equal to ``forward(...)[:, -1:]``.
        """
        past = past_key_values.get_seq_length() if past_key_values is not None else 0
        prune = last_position_only and inputs_embeds.shape[1] > 1
        if prune and (past_key_values is None or attention_mask is not None):
            raise ValueError("last_position_only needs a cache and no padding mask")
        inputs = self.layer_inputs(
            inputs_embeds, past_key_values, past, position_ids, attention_mask
        )
        hidden = inputs_embeds
        for index in range(len(self.layers)):
            final = "last" if prune else "all"
            hidden = self.run_layer(index, hidden, inputs, past_key_values, final)
        return hidden

    def layer_inputs(
        self,
        inputs_embeds: torch.Tensor,  # (B, S, H)
        cache: Cache | None,
        past: int,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> LayerInputs:
        """Positions, attention mask and rotary tables of S new tokens after ``past`` cached
        ones (``cache``'s first layer must hold exactly ``past`` tokens now).

        In inference without padding they depend only on (past, S): memoised, since every
        step of a policy has the same prompt layout.
        """
        batch, length = inputs_embeds.shape[:2]
        key = None
        if position_ids is None and attention_mask is None and not torch.is_grad_enabled():
            implementation = self.hf_config._attn_implementation
            key = (past, batch, length, inputs_embeds.dtype, inputs_embeds.device, implementation)
            memoised = self._layer_inputs_memo.get(key)  # (atomic: two streams may look)
            if memoised is not None:
                return memoised
        if position_ids is None:
            position_ids = torch.arange(past, past + length, device=inputs_embeds.device)[None]
        mask = create_causal_mask(
            config=self.hf_config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            past_key_values=cache,
            position_ids=position_ids,
        )
        cos, sin = self.rotary_emb(inputs_embeds, position_ids=position_ids)
        inputs = LayerInputs(position_ids, mask, cos, sin)
        if key is not None:
            if len(self._layer_inputs_memo) >= _LAYER_INPUTS_MEMO_SIZE:
                self._layer_inputs_memo.clear()
            self._layer_inputs_memo[key] = inputs
        return inputs

    def run_layer(
        self,
        index: int,
        hidden: torch.Tensor,  # (B, S, H)
        inputs: LayerInputs,
        cache: Cache | None,
        final: str = "all",
    ) -> torch.Tensor | None:
        """Decoder layer ``index`` on ``hidden``, appending its keys/values to ``cache``.

        ``final`` says what the LAST layer computes: "all" positions (B, S, H); "last": keys
        and values of all, the output of the last position only (B, 1, H); "cache": keys and
        values only (a prompt chunk that others follow), returns None.
        """
        if final not in ("all", "last", "cache"):
            raise ValueError(f"final must be 'all', 'last' or 'cache', got {final!r}")
        layer = self.layers[index]
        if index < len(self.layers) - 1 or final == "all":
            return self._run_layer(
                layer, hidden, inputs.mask, inputs.position_ids, cache, inputs.rotary
            )
        if cache is None:
            raise ValueError(f"final={final!r} needs a cache")
        if final == "cache":
            self._cache_last_layer_kv(layer, hidden, inputs.rotary, cache)
            return None
        if hidden.shape[1] > 1:
            head = inputs.rotary_slice(slice(None, -1))
            self._cache_last_layer_kv(layer, hidden[:, :-1], head, cache)
        # The last position attends to every cached key: no mask.
        last = slice(-1, None)
        return self._run_layer(
            layer,
            hidden[:, last],
            None,
            inputs.position_ids[:, last],
            cache,
            inputs.rotary_slice(last),
        )

    @staticmethod
    def _run_layer(layer, hidden, mask, position_ids, cache, position_embeddings) -> torch.Tensor:
        out = layer(
            hidden,
            attention_mask=mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=cache is not None,
            position_embeddings=position_embeddings,
        )
        return out[0] if isinstance(out, tuple) else out

    def _cache_last_layer_kv(self, layer, hidden, position_embeddings, cache: Cache) -> None:
        """Append the last layer's keys/values of ``hidden`` (B, S', H) to the cache, exactly as
        ``ChameleonAttention`` computes them (pre-norm, k_norm per head, RoPE)."""
        attn = layer.self_attn
        batch, length, _ = hidden.shape
        x = hidden if self.config.swin_norm else layer.input_layernorm(hidden)
        keys = attn.k_norm(attn.k_proj(x).reshape(-1, attn.num_key_value_heads, attn.head_dim))
        keys = keys.reshape(batch, length, attn.num_key_value_heads, attn.head_dim).transpose(1, 2)
        values = attn.v_proj(x).view(batch, length, attn.num_key_value_heads, attn.head_dim)
        cos, sin = position_embeddings
        _, keys = apply_rotary_pos_emb(keys, keys, cos, sin)
        cache.update(keys, values.transpose(1, 2), attn.layer_idx)


def crop_cache(cache: Cache, length: int) -> None:
    """Drop every layer's entries past the first ``length`` tokens (layers may differ)."""
    for layer in cache.layers:
        excess = layer.get_seq_length() - length
        if excess > 0:
            layer.crop(-excess)


class RynnVLAModel(nn.Module):
    """Chameleon backbone + lm_head + state projection + action head."""

    def __init__(self, config: RynnVLAConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        self.config = config
        hidden = config.backbone.hidden_size
        self.model = ChameleonBackbone(config.backbone, attn_implementation)
        self.lm_head = nn.Linear(hidden, config.backbone.vocab_size, bias=False)
        self.state_projection = nn.Linear(config.state_dim, hidden)
        self.action_head = nn.Linear(hidden, config.action_latent_dim)
        self.image_positions = (
            ImagePositionEmbedding(config.tokens, hidden)
            if config.image_position_embeddings
            else None
        )
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Chameleon's init: N(0, initializer_range) weights, zero biases, unit norms."""
        std = self.config.backbone.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0.0, std)
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
            elif isinstance(module, ChameleonRMSNorm):
                module.weight.fill_(1.0)

    # ---- inputs -------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, states: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings (B, S, H) with every STATE token's embedding replaced by
        ``state_projection(state)``; ``states`` (N, state_dim) fill STATE tokens in reading
        order (row-major over (B, S))."""
        embeds = self.model.embed_tokens(input_ids)  # (B, S, H)
        if self.image_positions is not None:
            embeds = self.image_positions(input_ids, embeds)
        is_state = input_ids == self.config.tokens.state_id  # (B, S)
        n_tokens = int(is_state.sum())
        n_states = 0 if states is None else states.shape[0]
        if n_tokens != n_states:
            raise TokenBookkeepingError(
                f"STATE tokens and states do not match: tokens {n_tokens}, states {n_states}"
            )
        if n_tokens == 0:
            return embeds
        if states.ndim != 2 or states.shape[1] != self.config.state_dim:
            raise TokenBookkeepingError(
                f"states must be (N, {self.config.state_dim}), got {tuple(states.shape)}"
            )
        projected = self.state_projection(states.to(embeds.dtype))  # (N, H)
        # under autocast the projection comes out in the autocast dtype, the embeddings not
        return embeds.masked_scatter(is_state.unsqueeze(-1), projected.to(embeds.dtype))

    # ---- training ------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training forward: ``(loss, metrics)`` with every loss term reported separately.

        batch: ``input_ids`` (B, S), ``labels`` (B, S) with -100 = not supervised,
        optional ``attention_mask`` (B, S), ``states`` (N_state, state_dim) for the STATE
        tokens, optional ``action_targets`` (N_action, action_latent_dim) for the ACTION
        tokens (each predicted from the hidden state just before it, the STATE position).
        """
        input_ids = batch["input_ids"]
        labels = batch["labels"]
        if labels.shape != input_ids.shape:
            raise TokenBookkeepingError(
                f"labels {tuple(labels.shape)} and input_ids {tuple(input_ids.shape)} differ"
            )
        embeds = self.embed(input_ids, batch.get("states"))
        hidden = self.model.norm(self.model(embeds, attention_mask=batch.get("attention_mask")))
        loss_cfg = self.config.loss

        targets = labels[:, 1:]  # (B, S-1): position t predicts token t+1
        valid = targets != IGNORE_INDEX
        # Only supervised positions go through lm_head: most of a stage-3 sequence (instruction,
        # first-frame images) is never predicted, and the 7B vocabulary is 65540 wide.
        logits = self.lm_head(hidden[:, :-1][valid]).float()  # (N, V)
        supervised = targets[valid]  # (N,)
        zero = hidden.new_zeros((), dtype=torch.float32)
        ce, accuracy, z_loss = zero, zero, zero
        if supervised.numel():
            ce = F.cross_entropy(logits, supervised)
            accuracy = (logits.argmax(-1) == supervised).float().mean()
            if loss_cfg.z_loss_weight > 0:
                z_loss = torch.logsumexp(logits, dim=-1).pow(2).mean()

        action_loss = self._action_loss(hidden, input_ids, batch.get("action_targets"))
        loss = (
            loss_cfg.ce_weight * ce
            + loss_cfg.action_weight * action_loss
            + loss_cfg.z_loss_weight * z_loss
        )
        metrics = {
            "loss": float(loss.detach()),
            "ce_loss": float(ce.detach()),
            "action_loss": float(action_loss.detach()),
            "z_loss": float(z_loss.detach()),
            "token_accuracy": float(accuracy.detach()),
            "supervised_tokens": float(valid.sum()),
        }
        return loss, metrics

    def action_read_positions(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, position) indices of the hidden states that predict each ACTION token: the
        token right before ACTION, which must be STATE."""
        batch_idx, pos = torch.nonzero(input_ids == self.config.tokens.action_id, as_tuple=True)
        if (pos == 0).any():
            raise TokenBookkeepingError("an ACTION token is at position 0 (no STATE before it)")
        before = input_ids[batch_idx, pos - 1]
        if not bool((before == self.config.tokens.state_id).all()):
            raise TokenBookkeepingError(
                f"every ACTION token must follow a STATE token; found {before.tolist()}"
            )
        return batch_idx, pos - 1

    def _action_loss(
        self, hidden: torch.Tensor, input_ids: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        batch_idx, read_pos = self.action_read_positions(input_ids)
        n_targets = 0 if targets is None else targets.shape[0]
        if n_targets != batch_idx.numel():
            raise TokenBookkeepingError(
                f"ACTION tokens and action targets do not match: tokens {batch_idx.numel()}, "
                f"targets {n_targets}"
            )
        if n_targets == 0:
            return hidden.new_zeros((), dtype=torch.float32)
        if targets.shape[1] != self.config.action_latent_dim:
            raise TokenBookkeepingError(
                f"action targets must be (N, {self.config.action_latent_dim}), "
                f"got {tuple(targets.shape)}"
            )
        predicted = self.action_head(hidden[batch_idx, read_pos]).float()  # (N, latent)
        return F.l1_loss(predicted, targets.float())

    # ---- inference -----------------------------------------------------------------------
    @torch.no_grad()
    def encode_prefix(self, prefix_ids: torch.Tensor) -> DynamicCache:
        """Run the constant prompt prefix (1, P) once and return its KV cache."""
        cache = DynamicCache(config=self.model.hf_config)
        embeds = self.embed(prefix_ids, None)  # (1, P, H); a prefix holds no STATE token
        self.model(embeds, past_key_values=cache)
        return cache

    @torch.no_grad()
    def predict_action_params(
        self,
        suffix_ids: torch.Tensor,  # (1, S), ends with STATE
        states: torch.Tensor,  # (n_state, state_dim)
        prefix_cache: DynamicCache | None = None,
    ) -> torch.Tensor:
        """Action head output (1, action_latent_dim) at the final STATE token.

        With ``prefix_cache`` the suffix attends to the cached prefix and the cache is cropped
        back afterwards, so the same prefix serves every step. The last decoder layer runs for
        the STATE position only, one hidden state is normed and projected: no vocabulary
        logits are ever computed here.
        """
        if int(suffix_ids[0, -1]) != self.config.tokens.state_id:
            raise TokenBookkeepingError("the inference prompt must end with the STATE token")
        embeds = self.embed(suffix_ids, states)
        cache = (
            prefix_cache if prefix_cache is not None else DynamicCache(config=self.model.hf_config)
        )
        prefix_len = cache.get_seq_length()
        try:
            hidden = self.model(embeds, past_key_values=cache, last_position_only=True)  # (1, 1, H)
        finally:
            crop_cache(cache, prefix_len)
        return self.action_params(hidden)

    def action_params(self, hidden: torch.Tensor) -> torch.Tensor:
        """Backbone output (1, S, H) ending at the STATE token -> [mu || logvar] (1, latent)."""
        return self.action_head(self.model.norm(hidden[:, -1])).float()

    def chunk_layers(
        self,
        chunk_ids: torch.Tensor,  # (1, S)
        states: torch.Tensor | None,  # (n_state, state_dim) for the chunk's STATE tokens
        cache: Cache,
        final: str,
    ) -> Iterator[torch.Tensor | None]:
        """Run one chunk of a prompt through the decoder a layer at a time, after what
        ``cache`` holds; yields once per layer, when the chunk's keys/values of that layer are
        in the cache (so a following chunk may run that layer).

        ``final="cache"``: a chunk other chunks follow; the last layer stores keys/values only
        and the last item is None. ``final="last"``: the chunk ending the prompt; the last
        item is the last position's hidden state (1, 1, H) for ``action_params``. The chunk's
        positions start at the first layer's cache length when the first item is requested.
        Splitting a prompt into chunks changes only float rounding.
        """
        if final == "last" and int(chunk_ids[0, -1]) != self.config.tokens.state_id:
            raise TokenBookkeepingError("the inference prompt must end with the STATE token")
        embeds = self.embed(chunk_ids, states)  # (1, S, H)
        inputs = self.model.layer_inputs(embeds, cache, cache.get_seq_length())
        hidden = embeds
        for index in range(len(self.model.layers)):
            hidden = self.model.run_layer(index, hidden, inputs, cache, final)
            yield hidden

    @torch.no_grad()
    def predict_action_params_naive(
        self, input_ids: torch.Tensor, states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference-style inference: full prompt, no cache, logits for every position and the
        full vocabulary, action head on every position, then pick the final STATE.
        Returns (action params (1, latent), logits (1, S, V)). Used as the baseline only."""
        embeds = self.embed(input_ids, states)
        hidden = self.model.norm(self.model(embeds))  # (1, S, H)
        logits = self.lm_head(hidden).float()  # (1, S, V)
        params = self.action_head(hidden).float()  # (1, S, latent)
        state_pos = torch.nonzero(input_ids[0] == self.config.tokens.state_id)[-1, 0]
        return params[:, state_pos], logits

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
