"""Image tokenizer: Chameleon's VQGAN encoder (transformers ``ChameleonVQVAE``) + preprocessing.

Preprocessing follows the published pipeline: RGB uint8 -> resize so the short side is
``short_side`` (bicubic, aspect ratio kept, long side truncated like torchvision's ``Resize``)
-> scale to [-1, 1] (mean = std = 0.5) -> crop the top-left corner to multiples of
``crop_multiple``. The encoder downsamples by ``2 ** (levels - 1)`` and returns one code per cell.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import ChameleonVQVAE, ChameleonVQVAEConfig

from .config import ImageTokenizerConfig
from .encoder_skip import encode_skipping_zero_branches


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) after resizing the short side to ``short_side`` (torchvision's int truncation)."""
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def cropped_shape(height: int, width: int, config: ImageTokenizerConfig) -> tuple[int, int]:
    """(h, w) of the network input for a raw image of (height, width)."""
    h, w = resized_shape(height, width, config.short_side)
    return h - h % config.crop_multiple, w - w % config.crop_multiple


def check_image(image: np.ndarray) -> None:
    """ValueError unless ``image`` is an RGB uint8 array (H, W, 3)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"image must be an RGB uint8 array of shape (H, W, 3), got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got dtype {image.dtype}")


def preprocess_image(image: np.ndarray, config: ImageTokenizerConfig) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float32 (3, h, w) in [-1, 1], resized and cropped."""
    check_image(image)
    height, width = image.shape[:2]
    new_h, new_w = resized_shape(height, width, config.short_side)
    if (new_h, new_w) != (height, width):
        pil = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC)
        image = np.asarray(pil)
    crop_h = new_h - new_h % config.crop_multiple
    crop_w = new_w - new_w % config.crop_multiple
    image = image[:crop_h, :crop_w]
    pixels = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float()  # (3, h, w)
    return pixels.div_(127.5).sub_(1.0)


def vq_config_from(config: ImageTokenizerConfig) -> ChameleonVQVAEConfig:
    return ChameleonVQVAEConfig(
        embed_dim=config.embed_dim,
        num_embeddings=config.codebook_size,
        latent_channels=config.latent_channels,
        resolution=config.resolution,
        base_channels=config.base_channels,
        channel_multiplier=list(config.channel_multiplier),
        num_res_blocks=config.num_res_blocks,
        attn_resolutions=list(config.attn_resolutions) or None,
        double_latent=False,
        dropout=0.0,
    )


class ImageTokenizer(nn.Module):
    """Frozen VQ encoder: pixels (B, 3, h, w) -> codes (B, h / ds, w / ds)."""

    def __init__(self, config: ImageTokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.vqvae = ChameleonVQVAE(vq_config_from(config))
        # oneDNN convolutions are ~20% faster on CPU in channels-last layout (same math).
        self.vqvae.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ImageTokenizer:
        # The tokenizer is frozen (as published): it never switches to training mode.
        return super().train(False)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        return preprocess_image(image, self.config)

    def _check_pixels(self, pixels: torch.Tensor) -> None:
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ValueError(f"pixels must be (B, 3, h, w), got {tuple(pixels.shape)}")
        h, w = pixels.shape[-2:]
        multiple = self.config.crop_multiple
        if h % multiple or w % multiple:
            raise ValueError(f"pixel size {h}x{w} is not a multiple of crop_multiple={multiple}")

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pre-quantisation features (B, embed_dim, h / ds, w / ds)."""
        self._check_pixels(pixels)
        pixels = pixels.contiguous(memory_format=torch.channels_last)
        # exact: the zero residual branches of the small presets' patch-colour encoder are skipped
        return self.vqvae.quant_conv(encode_skipping_zero_branches(self.vqvae.encoder, pixels))

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Nearest-codebook indices (B, h / ds, w / ds) of preprocessed pixels."""
        feats = self.features(pixels.to(self.vqvae.quant_conv.weight.dtype))
        batch, _, grid_h, grid_w = feats.shape
        flat = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]).float()  # (N, E)
        codebook = self.vqvae.quantize.embedding.weight.float()  # (K, E)
        distances = (
            flat.pow(2).sum(1, keepdim=True) - 2.0 * flat @ codebook.T + codebook.pow(2).sum(1)
        )  # (N, K)
        return distances.argmin(dim=1).view(batch, grid_h, grid_w)

    @torch.no_grad()
    def fit_codebook(self, pixels: torch.Tensor, iterations: int = 20, seed: int = 0) -> float:
        """Fit the codebook to the encoder features of ``pixels`` with k-means.

        For small presets trained from scratch (no pretrained VQGAN exists for them): a fixed
        random conv encoder plus a k-means codebook gives codes that follow the image content.
        Returns the mean squared quantisation error.
        """
        feats = self.features(pixels)
        flat = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]).float()  # (N, E)
        num_codes = self.config.codebook_size
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randint(0, flat.shape[0], (num_codes,), generator=gen)
        centroids = flat[pick].clone()  # (K, E)
        for _ in range(iterations):
            assign = torch.cdist(flat, centroids).argmin(dim=1)  # (N,)
            sums = torch.zeros_like(centroids).index_add_(0, assign, flat)
            counts = torch.bincount(assign, minlength=num_codes).float().unsqueeze(1)
            empty = counts.squeeze(1) == 0
            centroids = torch.where(empty.unsqueeze(1), centroids, sums / counts.clamp(min=1))
            if empty.any():  # re-seed dead codes on random features
                centroids[empty] = flat[
                    torch.randint(0, flat.shape[0], (int(empty.sum()),), generator=gen)
                ]
        self.vqvae.quantize.embedding.weight.copy_(centroids)
        assign = torch.cdist(flat, centroids).argmin(dim=1)
        return float((flat - centroids[assign]).pow(2).mean())
