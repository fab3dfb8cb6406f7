"""The CPU fast path's forward over two streams (see ``streams``), for 2+ cameras.

The prompt after the cached prefix is ``[older frames][instr][cam_1]..[cam_k] | [cam_k+1]..
[cam_n][STATE]``. The calling thread preprocesses and encodes cameras 1..k and runs the first
chunk (up to the ``|``) through the decoder; the worker preprocesses and encodes cameras
k+1..n and runs the second chunk one layer behind, each layer once the first chunk's
keys/values of that layer are cached:

    caller: VQ(front) | chunk 1, layer 0 | layer 1 | layer 2 | layer 3 (K/V)
    worker: VQ(wrist) |                  | chunk 2, layer 0 | layer 1 | layer 2 | layer 3

Same result as one forward over the whole prompt, up to float rounding (chunked attention).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from transformers.cache_utils import Cache

from .camera_encoding import CameraEncoder
from .modeling import RynnVLAModel, TokenBookkeepingError, crop_cache
from .processor import RynnVLAProcessor
from .sequence import build_action_sequence
from .streams import LayerHandoff, TwoStreams


@dataclass
class StepPrompt:
    """What the prompt of one step is made of, besides the new frame's cameras."""

    instruction_ids: list[int]
    older_blocks: list[list[list[int]]]  # per older frame in the prompt, one block per camera
    states: torch.Tensor  # (older + 1, state_dim) normalised, the new frame's last
    prefix_length: int  # tokens already in the cache (the first instruction)


@dataclass
class StepResult:
    params: torch.Tensor  # (1, 2 * latent) action head output
    pixels: list[torch.Tensor]  # (3, h, w) per camera, camera order
    blocks: list[list[int]]  # image block per camera, camera order
    prompt_tokens: int
    encoded_s: float  # perf_counter() when the calling thread's cameras were encoded


class PipelinedStep:
    """``step(prompt, pixels, cache)``: action params of the new frame; ``cache`` holds the
    prefix before and after (whatever the chunks added is cropped, also on errors)."""

    def __init__(
        self,
        model: RynnVLAModel,
        processor: RynnVLAProcessor,
        cameras: CameraEncoder,
        streams: TwoStreams,
    ) -> None:
        self.model = model
        self.processor = processor
        self.cameras = cameras
        self.streams = streams
        self.device = cameras.device

    def step(self, prompt: StepPrompt, images: list[np.ndarray], cache: Cache) -> StepResult:
        """``images``: RGB uint8 (H, W, 3) per camera, camera order (already validated)."""
        names = list(self.processor.config.camera_names)
        if len(images) != len(names) or len(names) < 2:
            raise TokenBookkeepingError(
                f"the pipelined step needs 2+ cameras and one image each: cameras {names}, "
                f"got {len(images)} images"
            )
        split = (len(names) + 1) // 2  # the first chunk's cameras come first in the prompt
        handoff = LayerHandoff(len(self.model.model.layers))
        encoded: list[float] = []

        def first_chunk() -> tuple[list[torch.Tensor], list[list[int]], list[int]]:
            pixels, blocks = self._encode(names[:split], images[:split])
            encoded.append(time.perf_counter())
            # The prompt as if the new frame had these cameras only: ... [blocks][STATE].
            ids = self._sequence(prompt, blocks)[prompt.prefix_length : -1]
            layers = self.model.chunk_layers(self._tensor(ids), prompt.states[:-1], cache, "cache")
            for index, _ in enumerate(layers):
                handoff.done(index)
            return pixels, blocks, ids

        def second_chunk() -> tuple[list[torch.Tensor], list[list[int]], list[int], torch.Tensor]:
            with torch.inference_mode():
                pixels, blocks = self._encode(names[split:], images[split:])
                ids = [token for block in blocks for token in block]
                ids.append(self.model.config.tokens.state_id)
                layers = self.model.chunk_layers(
                    self._tensor(ids), prompt.states[-1:], cache, "last"
                )
                hidden = None
                for index in range(len(self.model.model.layers)):
                    handoff.wait(index)
                    hidden = next(layers)
                return pixels, blocks, ids, hidden

        try:
            (pixels_1, blocks_1, ids_1), (pixels_2, blocks_2, ids_2, hidden) = self.streams.run(
                first_chunk, second_chunk, on_mine_failed=handoff.abort
            )
        finally:
            crop_cache(cache, prompt.prefix_length)
        full = self._sequence(prompt, blocks_1 + blocks_2)
        if full[prompt.prefix_length :] != ids_1 + ids_2:
            raise TokenBookkeepingError(
                f"pipelined chunks ({len(ids_1)} + {len(ids_2)} tokens) differ from the prompt "
                f"after the {prompt.prefix_length}-token prefix ({len(full)} tokens)"
            )
        params = self.model.action_params(hidden)
        return StepResult(params, pixels_1 + pixels_2, blocks_1 + blocks_2, len(full), encoded[0])

    def _encode(
        self, cameras: list[str], images: list[np.ndarray]
    ) -> tuple[list[torch.Tensor], list[list[int]]]:
        """Pixels (3, h, w) and image blocks of some cameras, each a VQ batch of one."""
        pairs = zip(cameras, images, strict=True)
        pixels = [self.processor.preprocess_camera(camera, image) for camera, image in pairs]
        codes = self.cameras.encode_each(pixels)
        blocks = [self.processor.camera_block(c, g) for c, g in zip(cameras, codes, strict=True)]
        return pixels, blocks

    def _sequence(self, prompt: StepPrompt, new_blocks: list[list[int]]) -> list[int]:
        config = self.model.config
        return build_action_sequence(
            prompt.instruction_ids,
            [*prompt.older_blocks, new_blocks],
            config.tokens,
            config.loss,
            config.instruction_every_frame,
            end_with_action=False,
        ).input_ids

    def _tensor(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor([ids], device=self.device)  # (1, S)
