"""The training module of stages 1-3: RynnVLAModel plus its frozen image tokenizer and (stages
2-3) frozen ActionVAE encoder, with the LeRobot-style API `forward(batch) -> (loss, metrics)`.

Data workers only decode and preprocess (pixels, normalised states, normalised relative chunks,
instruction ids); VQ encoding, ActionVAE targets and token sequences are made here, on the
training device, with the model core's own sequence builders (the same code inference uses).

Batch (B samples, F frames each, C cameras):
- `pixels` (B, F, C, 3, h, w) in [-1, 1], or `codes` (B, F, C, gh, gw): the frames' VQ codes,
  precomputed with this same frozen tokenizer (`CodeStore`, when there is no colour jitter)
- `instruction_ids`: list of B lists of token ids (BOS + BPE)
- stages 2-3: `states` (B, F, state_dim) normalised; `chunks` (B, F, T, action_dim) normalised
  relative chunks and `chunk_mask` (B, F, T) bool (False = padded past the episode end).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rynnvla_policy.core.action_vae import ActionVAE
from rynnvla_policy.core.image_tokenizer import ImageTokenizer
from rynnvla_policy.core.modeling import IGNORE_INDEX, RynnVLAModel
from rynnvla_policy.core.sequence import (
    build_action_sequence,
    build_stage1_sequence,
    collate,
    image_block,
)
from rynnvla_training.train.models.vq_decoder import VQDecoder
from rynnvla_training.train.preview import compose_preview, palette_image


class VLATrainingModule(nn.Module):
    def __init__(
        self,
        model: RynnVLAModel,
        image_tokenizer: ImageTokenizer,
        wrist_cameras: tuple[bool, ...],  # per camera: wrapped in WRIST_START / WRIST_END
        code_ids: torch.Tensor,  # (codebook_size,) token id of each VQ code (text tokenizer's)
        action_vae: ActionVAE | None = None,  # None: stage 1 (frames only)
        vq_decoder: VQDecoder | None = None,  # only for preview images
    ) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("code_ids", code_ids.long().clone(), persistent=False)
        id_to_code = torch.full((model.config.backbone.vocab_size,), -1, dtype=torch.long)
        id_to_code[code_ids.long()] = torch.arange(len(code_ids))
        self.register_buffer("id_to_code", id_to_code, persistent=False)
        self.image_tokenizer = image_tokenizer.requires_grad_(False)
        self.action_vae = action_vae.requires_grad_(False).eval() if action_vae else None
        self.vq_decoder = vq_decoder.requires_grad_(False).eval() if vq_decoder else None
        self.wrist_cameras = wrist_cameras
        if action_vae is None:
            # Stage 1 has no STATE / ACTION tokens: these heads get no gradient, and DDP
            # requires every trainable parameter to get one.
            model.state_projection.requires_grad_(False)
            model.action_head.requires_grad_(False)

    def train(self, mode: bool = True) -> VLATrainingModule:
        super().train(mode)
        if self.action_vae is not None:
            self.action_vae.eval()  # frozen target encoder: deterministic mean, no dropout
        if self.vq_decoder is not None:
            self.vq_decoder.eval()
        return self

    def transformer_blocks(self) -> list[nn.Module]:
        """The units FSDP shards and activation checkpointing recomputes."""
        return list(self.model.model.layers)

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model(self.model_inputs(batch))

    def model_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        codes = self.frame_codes(batch)  # (B, F, C, gh, gw)
        sequences = [
            self._sequence(ids, codes[b].cpu()) for b, ids in enumerate(batch["instruction_ids"])
        ]
        device = codes.device
        inputs = {k: v.to(device) for k, v in collate(sequences, self.config.tokens.pad_id).items()}
        if self.action_vae is not None:
            inputs["states"] = batch["states"].flatten(0, 1)  # (B * F, D): STATE tokens in order
            inputs["action_targets"] = self.action_targets(batch)  # (B * F, 2 * latent)
        return inputs

    @property
    def config(self):
        return self.model.config

    def frame_codes(self, batch: dict[str, Any]) -> torch.Tensor:
        """The batch's VQ codes (B, F, C, gh, gw): precomputed ones, else encoded now."""
        if "codes" in batch:
            return batch["codes"].long()
        return self.encode_images(batch["pixels"])

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, F, C, 3, h, w) -> VQ codes (B, F, C, gh, gw)."""
        lead = pixels.shape[:3]
        # fp32 even under bf16 autocast: the policy encodes in fp32, and a nearest-code search
        # in bf16 would flip codes near cell boundaries (training and inference would differ)
        with torch.autocast(pixels.device.type, enabled=False):
            codes = self.image_tokenizer.encode(pixels.flatten(0, 2).float())  # (B*F*C, gh, gw)
        return codes.view(*lead, *codes.shape[-2:])

    @torch.no_grad()
    def action_targets(self, batch: dict[str, Any]) -> torch.Tensor:
        """Frozen ActionVAE encoder output [mu || logvar] of each frame's future chunk."""
        chunks = batch["chunks"].flatten(0, 1).float()  # (B * F, T, D)
        mask = batch["chunk_mask"].flatten(0, 1)  # (B * F, T)
        return self.action_vae.encode(chunks, mask).float()

    def _frame_blocks(self, frame_codes: torch.Tensor) -> list[list[int]]:
        image, code_ids = self.config.image, self.code_ids.cpu()
        return [
            image_block(
                grid, self.config.tokens, image.downsample, image.crop_multiple, wrist, code_ids
            )
            for grid, wrist in zip(frame_codes, self.wrist_cameras, strict=True)
        ]

    def _sequence(self, instruction_ids: list[int], codes: torch.Tensor):
        frames = [self._frame_blocks(frame) for frame in codes]  # codes (F, C, gh, gw)
        if self.action_vae is None:
            return build_stage1_sequence(instruction_ids, frames, self.config.loss)
        return build_action_sequence(
            instruction_ids,
            frames,
            self.config.tokens,
            self.config.loss,
            self.config.instruction_every_frame,
        )

    # ------------------------------------------------------------------ preview
    @torch.no_grad()
    def preview(self, batch: dict[str, Any]) -> np.ndarray:
        """(H, W, 3) uint8: per camera, the true frames over the frames the model predicts
        token by token (teacher forcing: each code is the argmax given the true ones before
        it). Frames the model only conditions on are shown greyed in the predicted row."""
        first = _first_sample(batch)
        inputs = self.model_inputs(first)
        ids, labels = inputs["input_ids"], inputs["labels"]
        embeds = self.model.embed(ids, inputs.get("states"))
        hidden = self.model.model.norm(self.model.model(embeds))
        predicted_ids = self.model.lm_head(hidden[0, :-1]).argmax(-1)  # (S - 1,)
        true_codes = self.frame_codes(first)[0]  # (F, C, gh, gw)
        predicted = self._predicted_codes(labels[0, 1:], predicted_ids, true_codes)
        if self.vq_decoder is None:
            # No decoder (k-means tokenizer): compare codes, drawn with one colour per code.
            true_images = palette_image(true_codes.cpu().numpy(), self.config.image.downsample)
            predicted_images = palette_image(predicted.cpu().numpy(), self.config.image.downsample)
        else:
            # precomputed codes come without pixels: show what the true codes decode to
            pixels = first.get("pixels")
            true_images = self._decode(true_codes) if pixels is None else _to_uint8(pixels[0])
            predicted_images = self._decode(predicted)
        conditioned = self.config.loss.condition_frames
        return compose_preview(true_images, predicted_images, conditioned_frames=conditioned)

    def _predicted_codes(
        self, targets: torch.Tensor, predicted_ids: torch.Tensor, true_codes: torch.Tensor
    ) -> torch.Tensor:
        """Scatter the predicted ids at supervised image-code positions back into grids (a
        predicted non-image token is drawn as code 0)."""
        supervised_ids = targets.clamp(min=0)
        is_code = (targets != IGNORE_INDEX) & (self.id_to_code[supervised_ids] >= 0)
        codes = self.id_to_code[predicted_ids[is_code]].clamp(min=0)
        predicted = true_codes.clone()
        supervised = predicted[self.config.loss.condition_frames :]
        if codes.numel() != supervised.numel():
            raise RuntimeError(
                f"supervised image tokens {codes.numel()} != code cells {supervised.numel()}"
            )
        predicted[self.config.loss.condition_frames :] = codes.view_as(supervised)
        return predicted

    def _decode(self, codes: torch.Tensor) -> np.ndarray:
        """codes (F, C, gh, gw) -> (F, C, h, w, 3) uint8 through the VQ decoder."""
        codebook = self.image_tokenizer.vqvae.quantize.embedding.weight  # (K, E)
        latents = codebook[codes.flatten(0, 1)].permute(0, 3, 1, 2)  # (F*C, E, gh, gw)
        post = self.image_tokenizer.vqvae.post_quant_conv(latents)
        pixels = self.vq_decoder(post.to(next(self.vq_decoder.parameters()).dtype))
        return _to_uint8(pixels.view(*codes.shape[:2], *pixels.shape[1:]))


def _to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(..., 3, h, w) in [-1, 1] -> (..., h, w, 3) uint8."""
    images = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().byte()
    return images.movedim(-3, -1).cpu().numpy()


def _first_sample(batch: dict[str, Any]) -> dict[str, Any]:
    first = {}
    for key, value in batch.items():
        first[key] = value[:1]
    return first
