"""The VQGAN decoder (codes -> pixels), which transformers' ChameleonVQVAE does not include.

Only training needs it: the tokenizer's own reconstruction loss (`rynnvla-train vqgan`) and the
preview images of predicted future frames (stages 1-3). Inference never decodes images.

The layout and parameter names mirror the taming-transformers `Decoder` that the published
Chameleon VQGAN was trained with (`conv_in`, `mid.block_1/attn_1/block_2`,
`up.{level}.block.{i}`, `up.{level}.upsample.conv`, `norm_out`, `conv_out`), so the `decoder.*`
tensors of a released `vqgan.ckpt` load unchanged. Its residual and attention blocks are
transformers' Chameleon VQ blocks (same parameter names as taming's).

Saved next to the tokenizer as `image_tokenizer/decoder.safetensors`; the model core's tokenizer
loader ignores that file.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.models.chameleon.modeling_chameleon import (
    ChameleonVQVAEEncoderAttnBlock as AttnBlock,
)
from transformers.models.chameleon.modeling_chameleon import (
    ChameleonVQVAEEncoderResnetBlock as ResnetBlock,
)

from rynnvla_policy.core.config import ImageTokenizerConfig
from rynnvla_policy.core.image_tokenizer import vq_config_from

DECODER_WEIGHTS = "decoder.safetensors"


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B, C, 2h, 2w)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class VQDecoder(nn.Module):
    """Post-quantisation latents (B, latent_channels, h/ds, w/ds) -> pixels (B, 3, h, w)."""

    def __init__(self, config: ImageTokenizerConfig) -> None:
        super().__init__()
        self.config = config
        block_config = vq_config_from(config)
        levels = len(config.channel_multiplier)
        block_in = config.base_channels * config.channel_multiplier[-1]
        resolution = config.resolution // 2 ** (levels - 1)
        self.conv_in = nn.Conv2d(config.latent_channels, block_in, kernel_size=3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_config, block_in, block_in)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_config, block_in, block_in)
        up: list[nn.Module] = [nn.Module() for _ in range(levels)]
        for level in reversed(range(levels)):
            blocks, attentions = nn.ModuleList(), nn.ModuleList()
            block_out = config.base_channels * config.channel_multiplier[level]
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResnetBlock(block_config, block_in, block_out))
                block_in = block_out
                if resolution in config.attn_resolutions:
                    attentions.append(AttnBlock(block_in))
            up[level].block = blocks
            up[level].attn = attentions
            if level != 0:
                up[level].upsample = Upsample(block_in)
                resolution *= 2
        self.up = nn.ModuleList(up)
        self.norm_out = nn.GroupNorm(num_groups=32, num_channels=block_in, eps=1e-6, affine=True)
        self.conv_out = nn.Conv2d(block_in, 3, kernel_size=3, padding=1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        hidden = self.conv_in(latents)
        hidden = self.mid.block_2(self.mid.attn_1(self.mid.block_1(hidden)))
        for level in reversed(range(len(self.up))):
            stage = self.up[level]
            for index, block in enumerate(stage.block):
                hidden = block(hidden)
                if len(stage.attn) > 0:
                    hidden = stage.attn[index](hidden)
            if level != 0:
                hidden = stage.upsample(hidden)
        hidden = self.norm_out(hidden)
        return self.conv_out(hidden * torch.sigmoid(hidden))  # (B, 3, h, w), ~[-1, 1]

    def save(self, directory: Path) -> Path:
        path = Path(directory) / DECODER_WEIGHTS
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(path), metadata={"format": "pt"})
        return path

    @classmethod
    def load(cls, directory: Path, config: ImageTokenizerConfig) -> VQDecoder:
        """From `image_tokenizer/decoder.safetensors`; names missing/unexpected keys."""
        path = Path(directory) / DECODER_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"VQ decoder weights not found: {path}")
        decoder = cls(config)
        tensors = load_file(str(path), device="cpu")
        expected = decoder.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(
                f"{path} does not match the decoder of {config}: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
            )
        decoder.load_state_dict(tensors)
        return decoder

    @classmethod
    def from_taming_checkpoint(cls, path: Path, config: ImageTokenizerConfig) -> VQDecoder:
        """The `decoder.*` tensors of a taming-transformers / Chameleon `vqgan.ckpt`."""
        from rynnvla_policy.core.published import torch_load_weights_only

        data = torch_load_weights_only(Path(path))
        state = data.get("state_dict", data)
        tensors = {
            k.removeprefix("decoder."): v for k, v in state.items() if k.startswith("decoder.")
        }
        if not tensors:
            raise ValueError(f"{path} holds no decoder.* tensors (keys: {list(state)[:5]})")
        decoder = cls(config)
        expected = decoder.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"{path}: decoder keys do not match: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        decoder.load_state_dict({k: v.float() for k, v in tensors.items()})
        return decoder
