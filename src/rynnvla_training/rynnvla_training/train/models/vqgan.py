"""A trainable VQGAN: the model core's ImageTokenizer (ChameleonVQVAE encoder + codebook) with
gradients switched on, plus the VQDecoder, trained with a light perceptual-free recipe:

    loss = l1_weight * |x - x_hat| + l2_weight * (x - x_hat)^2
         + codebook_weight * ||sg(z) - z_q||^2 + beta * ||z - sg(z_q)||^2

with the straight-through estimator between encoder and decoder. The codebook starts as
k-means centroids of encoder features on training frames (dead codes are the classic failure of
small VQ models; data-seeded centroids avoid most of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rynnvla_policy.core.checkpoint import load_image_tokenizer, save_image_tokenizer
from rynnvla_policy.core.config import ImageTokenizerConfig
from rynnvla_policy.core.image_tokenizer import ImageTokenizer
from rynnvla_training.train.models.vq_decoder import VQDecoder


@dataclass(frozen=True)
class VQLossWeights:
    l1: float = 1.0
    l2: float = 1.0
    codebook: float = 1.0
    commitment: float = 0.25  # beta


class TrainableVQGAN(nn.Module):
    """forward(batch{"pixels": (B, 3, h, w) in [-1, 1]}) -> (loss, metrics)."""

    def __init__(self, config: ImageTokenizerConfig, weights: VQLossWeights) -> None:
        super().__init__()
        self.config = config
        self.weights = weights
        self.tokenizer = ImageTokenizer(config)
        self.tokenizer.requires_grad_(True)  # the model core freezes it for VLA training
        self.decoder = VQDecoder(config)

    @property
    def codebook(self) -> torch.Tensor:
        return self.tokenizer.vqvae.quantize.embedding.weight  # (K, E)

    def quantize(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, E, gh, gw) -> (quantised features (B, E, gh, gw), codes (B, gh, gw))."""
        batch, dim, grid_h, grid_w = features.shape
        flat = features.permute(0, 2, 3, 1).reshape(-1, dim)  # (N, E)
        codebook = self.codebook
        distances = (
            flat.pow(2).sum(1, keepdim=True) - 2.0 * flat @ codebook.T + codebook.pow(2).sum(1)
        )  # (N, K)
        codes = distances.argmin(dim=1)  # (N,)
        quantised = codebook[codes].view(batch, grid_h, grid_w, dim).permute(0, 3, 1, 2)
        return quantised, codes.view(batch, grid_h, grid_w)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, gh, gw) -> pixels (B, 3, h, w) in ~[-1, 1]."""
        quantised = self.codebook[codes].permute(0, 3, 1, 2)  # (B, E, gh, gw)
        return self.decoder(self.tokenizer.vqvae.post_quant_conv(quantised))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        pixels = batch["pixels"]  # (B, 3, h, w)
        features = self.tokenizer.features(pixels)  # (B, E, gh, gw)
        quantised, codes = self.quantize(features)
        codebook_loss = F.mse_loss(quantised, features.detach())
        commitment = F.mse_loss(features, quantised.detach())
        straight_through = features + (quantised - features).detach()
        recon = self.decoder(self.tokenizer.vqvae.post_quant_conv(straight_through))
        l1 = (recon - pixels).abs().mean()
        l2 = (recon - pixels).pow(2).mean()
        w = self.weights
        loss = w.l1 * l1 + w.l2 * l2 + w.codebook * codebook_loss + w.commitment * commitment
        return loss, {
            "l1": l1.detach(),
            "l2": l2.detach(),
            "codebook_loss": codebook_loss.detach(),
            "commitment_loss": commitment.detach(),
            "code_perplexity": _perplexity(codes, self.config.codebook_size),
        }

    @torch.no_grad()
    def init_codebook(self, pixels: torch.Tensor, seed: int) -> float:
        """k-means codebook from the encoder features of `pixels` (B, 3, h, w)."""
        return self.tokenizer.fit_codebook(pixels, iterations=10, seed=seed)

    def save_pretrained(self, directory: Path) -> Path:
        """The model core's `image_tokenizer/` format plus `decoder.safetensors`."""
        directory = Path(directory)
        frozen = ImageTokenizer(self.config)
        frozen.vqvae.load_state_dict(self.tokenizer.vqvae.state_dict())
        save_image_tokenizer(frozen, directory)
        self.decoder.save(directory)
        return directory

    @classmethod
    def from_pretrained(cls, directory: Path, weights: VQLossWeights) -> TrainableVQGAN:
        """Continue training a saved tokenizer (its decoder too when present)."""
        loaded = load_image_tokenizer(Path(directory))
        model = cls(loaded.config, weights)
        model.tokenizer.vqvae.load_state_dict(loaded.vqvae.state_dict())
        if (Path(directory) / "decoder.safetensors").is_file():
            model.decoder.load_state_dict(VQDecoder.load(directory, loaded.config).state_dict())
        return model


def _perplexity(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp(entropy) of the code histogram: how many codes are effectively in use."""
    counts = torch.bincount(codes.flatten(), minlength=codebook_size).float()
    probs = counts / counts.sum()
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return entropy.exp().detach()
