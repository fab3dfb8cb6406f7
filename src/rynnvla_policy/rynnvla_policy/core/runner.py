"""PolicyRunner: the robot-facing inference API (``infer(observation)`` and ``reset()``).

One step = preprocess + tokenise the cameras, ONE forward pass over the prompt
``[BOS + instruction][front][wrist][STATE]`` (or the last ``inference_history`` frames), the
action head on the STATE hidden state, the ActionVAE decoder, and the exact inverse of the
action normalisation. Never computes vocabulary logits. The KV cache of the constant prefix
(``[BOS + instruction]`` of the first frame) is computed once per instruction and reused.
On GPU the backbone runs in bf16 (fp16 where bf16 is unsupported) with SDPA; on CPU in float32,
deterministically.

On a CPU with 2+ intra-op threads the step runs on two threads (``pipelined_step``): each
encodes half of the cameras, then the two halves of the prompt go through the decoder layer
by layer, the second one layer behind the first. Same tokens, same actions up to float rounding
(~1e-7) as the one-pass path used with one thread and on GPU.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .camera_encoding import CameraEncoder
from .checkpoint import Checkpoint
from .modeling import RynnVLAModel
from .pipelined_step import PipelinedStep, StepPrompt
from .sequence import build_action_sequence
from .streams import TwoStreams


@dataclass(frozen=True)
class FeatureContract:
    """What a checkpoint consumes and produces (robot-facing)."""

    camera_names: tuple[str, ...]
    state_dim: int
    action_dim: int
    joint_names: tuple[str, ...]
    chunk_length: int
    fps: float
    absolute_dims: tuple[int, ...]


@dataclass
class Observation:
    """One observation: RGB uint8 (H, W, 3) per camera, raw joint state (D,), instruction."""

    images: dict[str, np.ndarray]
    state: np.ndarray
    instruction: str


@dataclass
class ActionChunk:
    """``positions`` (chunk_length, action_dim) float64 absolute joint targets; ``latent``
    (latent_dim,) float32 ActionVAE latent; ``timings_ms`` per stage."""

    positions: np.ndarray
    latent: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0


@dataclass
class _Frame:
    blocks: list[list[int]]
    state: np.ndarray  # normalised (D,) float32
    pixels: list[torch.Tensor]  # kept only for the naive baseline's re-encoding


def default_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class PolicyRunner:
    """Inference over a loaded checkpoint; keeps per-episode state until ``reset()``."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        sample_latent: bool = False,
        seed: int = 0,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype or default_dtype(self.device)
        self.model: RynnVLAModel = checkpoint.model.to(self.device, self.dtype).eval()
        self.image_tokenizer = checkpoint.image_tokenizer.to(self.device).eval()
        self.action_vae = checkpoint.action_vae.to(self.device).eval()
        self.processor = checkpoint.processor
        self.cameras = CameraEncoder(self.image_tokenizer, self.device)
        self._streams = TwoStreams()
        self._pipelined = PipelinedStep(self.model, self.processor, self.cameras, self._streams)
        self.config = self.model.config
        self.sample_latent = sample_latent
        self._generator = torch.Generator(device=self.device).manual_seed(seed)
        self._seed = seed
        self._history: deque[_Frame] = deque(maxlen=self.config.inference_history)
        self._instruction: str | None = None
        self._prefix_ids: list[int] = []
        self._prefix_cache = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        sample_latent: bool = False,
        seed: int = 0,
    ) -> PolicyRunner:
        return cls(Checkpoint.from_pretrained(path), device, dtype, sample_latent, seed)

    @property
    def contract(self) -> FeatureContract:
        features = self.processor.config
        return FeatureContract(
            camera_names=tuple(features.camera_names),
            state_dim=features.state_dim,
            action_dim=features.action_dim,
            joint_names=tuple(features.joint_names),
            chunk_length=features.chunk_length,
            fps=float(features.fps),
            absolute_dims=tuple(features.absolute_dims),
        )

    def reset(self) -> None:
        """Forget the frame history and the cached instruction prefix."""
        self._history.clear()
        self._instruction = None
        self._prefix_ids = []
        self._prefix_cache = None
        self._generator.manual_seed(self._seed)

    @property
    def uses_two_streams(self) -> bool:
        """Whether ``infer`` runs on two threads now (CPU, 2+ intra-op threads, 2+ cameras)."""
        return len(self.processor.config.camera_names) >= 2 and TwoStreams.worthwhile(self.device)

    def close(self) -> None:
        """Stop the worker thread of the CPU fast path (``infer`` starts it again if called)."""
        self._streams.close()

    # ---- the fast path ----------------------------------------------------------------------
    @torch.inference_mode()
    def infer(self, observation: Observation) -> ActionChunk:
        """On a CPU with 2+ intra-op threads and 2+ cameras, the step runs on two threads
        (``pipelined_step``); otherwise cameras are batched and the prompt runs in one pass."""
        start = time.perf_counter()
        instruction_ids, state = self._begin(observation)
        if self._prefix_cache is None:
            self._prefix_ids = instruction_ids
            prefix = torch.tensor([instruction_ids], device=self.device)
            self._prefix_cache = self.model.encode_prefix(prefix)
        if self.uses_two_streams:
            params, tokens, t_pre = self._forward_two_streams(observation, instruction_ids, state)
        else:
            params, tokens, t_pre = self._forward_one_pass(observation, instruction_ids, state)
        t_fwd = time.perf_counter()
        positions, latent = self._decode(params, observation.state)
        end = time.perf_counter()
        return ActionChunk(positions, latent, _timings(start, t_pre, t_fwd, end), tokens)

    def _forward_two_streams(
        self, observation: Observation, instruction_ids: list[int], state: np.ndarray
    ) -> tuple[torch.Tensor, int, float]:
        """Action params, prompt length and the time the calling thread's cameras were
        encoded; cameras and prompt halves on two threads."""
        older = list(self._history)[1:] if self._history_full() else list(self._history)
        prompt = StepPrompt(
            instruction_ids,
            [f.blocks for f in older],
            self._states([*[f.state for f in older], state]),
            len(self._prefix_ids),
        )
        images = [observation.images[c] for c in self.processor.config.camera_names]
        result = self._pipelined.step(prompt, images, self._prefix_cache)
        self._append_frame(result.blocks, result.pixels, state)
        return result.params, result.prompt_tokens, result.encoded_s

    def _forward_one_pass(
        self, observation: Observation, instruction_ids: list[int], state: np.ndarray
    ) -> tuple[torch.Tensor, int, float]:
        """Same as ``_forward_two_streams``, on the calling thread: cameras batched, the
        prompt after the cached prefix in one pass."""
        pixels = self.processor.preprocess_images(observation.images)
        codes = self.cameras.encode_batched(pixels)
        self._append_frame(self.processor.frame_blocks(codes), pixels, state)
        encoded = time.perf_counter()
        ids, states = self._prompt(instruction_ids)
        suffix = torch.tensor([ids[len(self._prefix_ids) :]], device=self.device)
        params = self.model.predict_action_params(suffix, states, self._prefix_cache)
        return params, len(ids), encoded

    # ---- the reference-style baseline ---------------------------------------------------------
    @torch.inference_mode()
    def infer_naive(self, observation: Observation) -> ActionChunk:
        """What the reference inference does: tokenise the instruction and every frame's cameras
        again (one camera at a time), run the whole prompt without any cache, compute logits
        over the full vocabulary and the action head at every position. Same result as
        ``infer``; kept as the benchmark baseline and as a test oracle."""
        start = time.perf_counter()
        self._observe(observation, self.cameras.encode_each)
        instruction_ids = self.processor.text_tokenizer.encode(observation.instruction)
        for old in list(self._history)[:-1]:  # re-encode history frames like the reference
            old.blocks = self.processor.frame_blocks(
                [self.image_tokenizer.encode(p[None].to(self.device))[0] for p in old.pixels]
            )
        t_pre = time.perf_counter()
        ids, states = self._prompt(instruction_ids)
        full = torch.tensor([ids], device=self.device)
        params, _logits = self.model.predict_action_params_naive(full, states)
        t_fwd = time.perf_counter()
        positions, latent = self._decode(params, observation.state)
        end = time.perf_counter()
        return ActionChunk(positions, latent, _timings(start, t_pre, t_fwd, end), len(ids))

    # ---- steps -------------------------------------------------------------------------------
    def _observe(
        self, observation: Observation, encode: Callable[[list[torch.Tensor]], list[torch.Tensor]]
    ) -> list[int]:
        """Validate, tokenise (``encode``: pixels per camera -> code grids) and append the
        observation to the history; returns the instruction ids."""
        instruction_ids, state = self._begin(observation)
        pixels = self.processor.preprocess_images(observation.images)
        self._append_frame(self.processor.frame_blocks(encode(pixels)), pixels, state)
        return instruction_ids

    def _begin(self, observation: Observation) -> tuple[list[int], np.ndarray]:
        """Validate; the instruction ids and the normalised state."""
        processor = self.processor
        processor.check_observation(observation.images, observation.state)
        instruction_ids = processor.encode_instruction(observation.instruction)
        if observation.instruction != self._instruction:
            # A new instruction starts a new context: old frames and prefix no longer apply.
            self._history.clear()
            self._prefix_cache = None
            self._instruction = observation.instruction
        return instruction_ids, processor.normalize_state(observation.state)

    def _append_frame(
        self, blocks: list[list[int]], pixels: list[torch.Tensor], state: np.ndarray
    ) -> None:
        frame = _Frame(
            blocks=blocks,
            state=state,
            pixels=pixels if self.config.inference_history > 1 else [],
        )
        self._history.append(frame)

    def _history_full(self) -> bool:
        return len(self._history) == self._history.maxlen

    def _states(self, states: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(states)).to(self.device)  # (frames, state_dim)

    def _prompt(self, instruction_ids: list[int]) -> tuple[list[int], torch.Tensor]:
        frames = list(self._history)
        seq = build_action_sequence(
            instruction_ids,
            [f.blocks for f in frames],
            self.config.tokens,
            self.config.loss,
            self.config.instruction_every_frame,
            end_with_action=False,
        )
        return seq.input_ids, self._states([f.state for f in frames])

    def _decode(self, params: torch.Tensor, raw_state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[mu || logvar] (1, 2L) -> absolute joint targets (T, D) and the latent z (L,)."""
        params = params.float()
        mu, logvar = params.chunk(2, dim=-1)
        z = mu
        if self.sample_latent:
            noise = torch.randn(mu.shape, generator=self._generator, device=mu.device)
            z = mu + noise * torch.exp(0.5 * logvar)
        vae_dtype = next(self.action_vae.parameters()).dtype
        chunk = self.action_vae.decode(z.to(vae_dtype)).float()  # (1, T, D)
        positions = self.processor.to_absolute(chunk[0].cpu().numpy(), raw_state)
        return positions, z[0].cpu().numpy().astype(np.float32)


def _timings(start: float, t_pre: float, t_fwd: float, end: float) -> dict[str, float]:
    return {
        "preprocess": (t_pre - start) * 1e3,
        "forward": (t_fwd - t_pre) * 1e3,
        "decode": (end - t_fwd) * 1e3,
        "total": (end - start) * 1e3,
    }
