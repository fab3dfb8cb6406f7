"""Benchmark of ``PolicyRunner.infer`` against the reference-style naive path.

Default: the ``tiny`` preset, 2 cameras (96x128 RGB like the simulator), CPU, random weights.
``--preset rynnvla-7b --device cuda`` measures the published dimensions on a GPU (random
weights, synthetic tokenizer, 640x480 cameras). The naive path is what the reference inference
does: no prefix KV cache, every camera tokenised separately, full-vocabulary logits and the
action head at every position.

Prints a table and ends with one JSON line: infer_p50_ms, infer_p99_ms, naive_p50_ms,
speedup_vs_naive, peak_rss_mb, prompt_tokens, params and more. The ``cpu`` rows are process
CPU time per step (all threads): on a shared, busy machine they stay meaningful when wall-clock
figures do not.

With ``--threads`` >= 2 on CPU, ``infer`` runs its step on two threads (cameras side by side,
prompt halves layer-pipelined; see ``rynnvla_policy.core.pipelined_step``): its ``preprocess``
row ends when the calling thread's cameras are encoded and overlaps the worker's share, and its
``cpu`` row adds both threads. The naive path gets the same intra-op threads and uses them the
reference's way. ``--threads 1`` compares both paths on one thread.
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting collapse when the cores are shared with other busy
# processes (measured here: p50 1.3 s instead of 88 ms with 2 threads on a loaded 2-core box).
# Must be set before torch loads its OpenMP runtime; an explicit setting in the caller wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from tqdm import tqdm

from rynnvla_policy.core import (
    Checkpoint,
    Observation,
    PolicyRunner,
    ProcessorConfig,
    RynnVLAModel,
    RynnVLAProcessor,
    get_preset,
)
from rynnvla_policy.core.action_vae import ActionVAE, get_action_vae_preset
from rynnvla_policy.core.image_tokenizer import ImageTokenizer
from rynnvla_policy.core.testing import SIM_INSTRUCTIONS, make_tiny_checkpoint, random_statistics
from rynnvla_policy.core.text_tokenizer import TextTokenizer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--history", type=int, default=None, help="override inference_history")
    parser.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    parser.add_argument("--layers", type=int, default=None, help="override the layer count")
    return parser.parse_args(argv)


def synthetic_checkpoint(preset_name: str, layers: int | None, device: torch.device) -> Checkpoint:
    """Random-weight checkpoint of any preset, built in place (no files; 7B-sized allowed).

    The text tokenizer is a word-level stand-in with ids in the text range: instruction
    lengths, not token identities, matter for timing.
    """
    preset = get_preset(preset_name)
    config = preset.model
    if layers:
        config = config.replace(backbone=config.backbone.replace(num_hidden_layers=layers))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            model = RynnVLAModel(config)
    finally:
        torch.set_default_dtype(previous)
    tokens = config.tokens
    words = sorted({w for text in SIM_INSTRUCTIONS for w in text.split()})
    first = tokens.size_token_base + tokens.max_size_grids + 1
    vocab = {"<s>": tokens.bos_id, "<pad>": tokens.pad_id, "<unk>": first}
    vocab.update({w: first + 1 + i for i, w in enumerate(words)})
    text_tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    text_tok.pre_tokenizer = pre_tokenizers.Whitespace()
    features = ProcessorConfig()
    processor = RynnVLAProcessor(
        features,
        config.image,
        tokens,
        random_statistics(features.action_dim, np.random.default_rng(0)),
        TextTokenizer(text_tok, tokens),
    )
    vae = ActionVAE(get_action_vae_preset(preset.action_vae_preset))
    return Checkpoint(model.eval(), ImageTokenizer(config.image), vae.eval(), processor)


def observations(count: int, size: tuple[int, int], seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [
        Observation(
            images={
                c: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for c in ("front", "wrist")
            },
            state=rng.normal(0.0, 0.3, 6),
            instruction=SIM_INSTRUCTIONS[0],
        )
        for _ in range(count)
    ]


def time_path(fn, obs: list[Observation], warmup: int, sync, label: str) -> list[dict]:
    for o in obs[:warmup]:
        fn(o)
    timings = []
    for o in tqdm(obs[warmup:], desc=label, leave=False, file=sys.stderr):
        start, start_cpu = time.perf_counter(), time.process_time()
        chunk = fn(o)
        sync()
        wall = (time.perf_counter() - start) * 1e3
        cpu = (time.process_time() - start_cpu) * 1e3  # all threads: robust to a busy machine
        timings.append(
            {**chunk.timings_ms, "wall": wall, "cpu": cpu, "tokens": chunk.prompt_tokens}
        )
    return timings


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.preset == "tiny" and args.layers is None:
        size = tuple(args.image_size or (96, 128))
        path = make_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny", image_size=size)
        checkpoint = Checkpoint.from_pretrained(path)
    else:
        size = tuple(args.image_size or (480, 640))
        checkpoint = synthetic_checkpoint(args.preset, args.layers, device)
    if args.history:
        model = checkpoint.model
        model.config = model.config.replace(
            inference_history=args.history,
            train_frames=max(args.history, model.config.train_frames),
        )
    counts = {
        "backbone_params": checkpoint.model.num_parameters(),
        "image_tokenizer_params": sum(p.numel() for p in checkpoint.image_tokenizer.parameters()),
        "action_vae_params": sum(p.numel() for p in checkpoint.action_vae.parameters()),
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fast_runner = PolicyRunner(checkpoint, device=device)
    naive_runner = PolicyRunner(checkpoint, device=device)
    obs = observations(args.warmup + args.steps, size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    fast = time_path(fast_runner.infer, obs, args.warmup, sync, "infer")
    gpu_fast_mb = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    naive = time_path(naive_runner.infer_naive, obs, args.warmup, sync, "naive")
    gpu_naive_mb = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = []
    for name, runs in (("infer", fast), ("naive", naive)):
        for key in ("preprocess", "forward", "decode", "total", "wall", "cpu"):
            values = [r[key] for r in runs]
            rows.append((name, key, pct(values, 50), pct(values, 90), pct(values, 99)))
    cfg = checkpoint.model.config
    print(
        f"preset={cfg.name} device={device} threads={args.threads} image={size[0]}x{size[1]} "
        f"history={cfg.inference_history} prompt_tokens={fast[-1]['tokens']} steps={args.steps} "
        f"infer_mode={'two_streams' if fast_runner.uses_two_streams else 'one_pass'}"
    )
    print(f"{'path':<6} {'stage':<11} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9}")
    for name, key, p50, p90, p99 in rows:
        print(f"{name:<6} {key:<11} {p50:>9.2f} {p90:>9.2f} {p99:>9.2f}")
    fast_p50 = pct([r["wall"] for r in fast], 50)
    naive_p50 = pct([r["wall"] for r in naive], 50)
    result = {
        "preset": cfg.name,
        "device": str(device),
        "threads": args.threads,
        "inference_history": cfg.inference_history,
        "infer_mode": "two_streams" if fast_runner.uses_two_streams else "one_pass",
        "prompt_tokens": fast[-1]["tokens"],
        "infer_p50_ms": round(fast_p50, 3),
        "infer_p99_ms": round(pct([r["wall"] for r in fast], 99), 3),
        "naive_p50_ms": round(naive_p50, 3),
        "naive_p99_ms": round(pct([r["wall"] for r in naive], 99), 3),
        "speedup_vs_naive": round(naive_p50 / fast_p50, 3),
        "infer_cpu_p50_ms": round(pct([r["cpu"] for r in fast], 50), 3),
        "naive_cpu_p50_ms": round(pct([r["cpu"] for r in naive], 50), 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "gpu_peak_mb_infer": gpu_fast_mb and round(gpu_fast_mb, 1),
        "gpu_peak_mb_naive": gpu_naive_mb and round(gpu_naive_mb, 1),
        **counts,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
