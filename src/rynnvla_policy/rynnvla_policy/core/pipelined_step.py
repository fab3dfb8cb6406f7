"""The CPU fast path's forward over two streams (see ``streams``), for 2+ cameras.

The prompt after the cached prefix is ``[older frames][instr][cam_1]..[cam_k] | [cam_k+1]..
[cam_n][STATE]``. The calling thread encodes cameras 1..k and runs the first chunk (up to the
``|``) through the decoder; the worker encodes cameras k+1..n and runs the second chunk one
layer behind, each layer once the first chunk's keys/values of that layer are cached:

    caller: VQ(front) | chunk 1, layer 0 | layer 1 | layer 2 | layer 3 (K/V)
    worker: VQ(wrist) |                  | chunk 2, layer 0 | layer 1 | layer 2 | layer 3

Same result as one forward over the whole prompt, up to float rounding (chunked attention).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
    codes: list[torch.Tensor]  # (gh, gw) per camera, camera order
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

    def step(self, prompt: StepPrompt, pixels: list[torch.Tensor], cache: Cache) -> StepResult:
        names = list(self.processor.config.camera_names)
        if len(pixels) != len(names) or len(names) < 2:
            raise TokenBookkeepingError(
                f"the pipelined step needs 2+ cameras and one image each: cameras {names}, "
                f"got {len(pixels)} images"
            )
        split = (len(names) + 1) // 2  # the first chunk's cameras come first in the prompt
        handoff = LayerHandoff(len(self.model.model.layers))
        encoded: list[float] = []

        def first_chunk() -> tuple[list[torch.Tensor], list[int]]:
            codes = self.cameras.encode_each(pixels[:split])
            encoded.append(time.perf_counter())
            blocks = self._blocks(names[:split], codes)
            # The prompt as if the new frame had these cameras only: ... [blocks][STATE].
            ids = self._sequence(prompt, blocks)[prompt.prefix_length : -1]
            layers = self.model.chunk_layers(self._tensor(ids), prompt.states[:-1], cache, "cache")
            for index, _ in enumerate(layers):
                handoff.done(index)
            return codes, ids

        def second_chunk() -> tuple[list[torch.Tensor], list[int], torch.Tensor]:
            with torch.inference_mode():
                codes = self.cameras.encode_each(pixels[split:])
                blocks = self._blocks(names[split:], codes)
                ids = [token for block in blocks for token in block]
                ids.append(self.model.config.tokens.state_id)
                layers = self.model.chunk_layers(
                    self._tensor(ids), prompt.states[-1:], cache, "last"
                )
                hidden = None
                for index in range(len(self.model.model.layers)):
                    handoff.wait(index)
                    hidden = next(layers)
                return codes, ids, hidden

        try:
            (codes_1, ids_1), (codes_2, ids_2, hidden) = self.streams.run(
                first_chunk, second_chunk, on_mine_failed=handoff.abort
            )
        finally:
            crop_cache(cache, prompt.prefix_length)
        full = self._sequence(prompt, self._blocks(names, codes_1 + codes_2))
        if full[prompt.prefix_length :] != ids_1 + ids_2:
            raise TokenBookkeepingError(
                f"pipelined chunks ({len(ids_1)} + {len(ids_2)} tokens) differ from the prompt "
                f"after the {prompt.prefix_length}-token prefix ({len(full)} tokens)"
            )
        params = self.model.action_params(hidden)
        return StepResult(params, codes_1 + codes_2, len(full), encoded[0])

    def _blocks(self, cameras: list[str], codes: list[torch.Tensor]) -> list[list[int]]:
        return [self.processor.camera_block(c, g) for c, g in zip(cameras, codes, strict=True)]

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
