"""`rynnvla-train` as users run it: subprocesses, torchrun with 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rynnvla_training.train import checkpoint_io

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
QUIET = ["--set", "log.progress_bar=false", "--set", "log.tensorboard=false"]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1")


def _train(args: list[str], nproc: int = 1, timeout_s: float = 400) -> dict:
    launcher = [sys.executable, "-m", "rynnvla_training.train.cli"]
    if nproc > 1:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "rynnvla_training.train.cli",
        ]
    done = subprocess.run(
        [*launcher, *args, *QUIET], env=_env(), capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1])
    assert f"final checkpoint: {summary['final_checkpoint']}" in done.stdout
    return summary


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    latest = checkpoint_io.latest_checkpoint(run_dir / "checkpoints")
    return torch.load(latest / "state.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def robot_vae_dir(tmp_path_factory, converted_dataset) -> Path:
    out = tmp_path_factory.mktemp("cli_vae")
    summary = _train(
        [
            "vae",
            "--output-dir",
            str(out),
            "--max-steps",
            "3",
            "--set",
            f"data.lerobot_roots=[{converted_dataset}]",
            "--set",
            "loop.micro_batch_size=8",
        ]
    )
    assert summary["samples_per_s"] > 0 and summary["steps"] == 3
    return Path(summary["final_checkpoint"])


def _stage3_args(out: Path, dataset: Path, vae: Path, batch: int) -> list[str]:
    return [
        "stage3",
        "--output-dir",
        str(out),
        "--max-steps",
        "2",
        "--set",
        f"data.lerobot_roots=[{dataset}]",
        "--set",
        f"model.action_vae={vae}",
        "--set",
        f"loop.micro_batch_size={batch}",
        "--set",
        "model.residual_dropout=0.0",
        "--set",
        "model.codebook_fit_frames=16",
        "--set",
        "loop.num_workers=1",
        "--set",
        "checkpoint.every_steps=0",
    ]


def test_stage3_ddp_two_processes_match_one_process(tmp_path, converted_dataset, robot_vae_dir):
    # Same global batch (2 x 2 vs 1 x 4), no dropout: the same parameters after 2 steps.
    ddp = _train(_stage3_args(tmp_path / "ddp", converted_dataset, robot_vae_dir, 2), nproc=2)
    one = _train(_stage3_args(tmp_path / "one", converted_dataset, robot_vae_dir, 4))
    assert ddp["strategy"] == "ddp" and ddp["world_size"] == 2 and one["strategy"] == "single"
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "one")
    for name, value in a.items():
        torch.testing.assert_close(value, b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_stage3_compiled_blocks_train_like_eager_and_export_plain_weights(
    tmp_path, converted_dataset, robot_vae_dir
):
    # No dropout, same seed: torch.compile'd blocks must not change what is learned, and the
    # checkpoint must hold the model's own parameter names (no "_orig_mod." from the wrapper).
    eager = _train(_stage3_args(tmp_path / "eager", converted_dataset, robot_vae_dir, 4))
    compiled_args = _stage3_args(tmp_path / "compiled", converted_dataset, robot_vae_dir, 4)
    compiled = _train([*compiled_args, "--set", "dist.compile_blocks=true"])
    a, b = _weights(tmp_path / "compiled"), _weights(tmp_path / "eager")
    assert a.keys() == b.keys() and not any("_orig_mod" in name for name in a)
    for name, value in a.items():
        torch.testing.assert_close(value, b[name], rtol=1e-3, atol=1e-4, msg=name)
    assert abs(compiled["final_loss"] - eager["final_loss"]) < 1e-3
    from rynnvla_policy.core import PolicyRunner

    assert PolicyRunner.from_pretrained(compiled["final_checkpoint"]).contract.state_dim == 6


def test_stage3_fsdp_bf16_activation_checkpointing_exports_a_policy(
    tmp_path, converted_dataset, robot_vae_dir
):
    args = _stage3_args(tmp_path, converted_dataset, robot_vae_dir, 1)
    args += [
        "--set",
        "dist.strategy=fsdp",
        "--set",
        "dist.precision=bf16",
        "--set",
        "dist.activation_checkpointing=true",
        "--set",
        "log.preview_every_steps=2",
    ]
    summary = _train(args, nproc=2)
    assert summary["strategy"] == "fsdp" and np_isfinite(summary["final_loss"])
    latest = checkpoint_io.latest_checkpoint(tmp_path / "checkpoints")
    assert checkpoint_io.read_meta(latest)["format"] == "sharded"
    from rynnvla_policy.core import PolicyRunner

    assert (tmp_path / "previews" / "step_00000002.png").is_file()
    runner = PolicyRunner.from_pretrained(summary["final_checkpoint"])
    assert runner.contract.state_dim == 6


def np_isfinite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


def test_shipped_config_files_resolve():
    from rynnvla_training.train.stages import resolve_config

    files = sorted(CONFIG_DIR.glob("train_*.yaml"))
    assert files, f"no train_*.yaml in {CONFIG_DIR}"
    for path in files:
        stage = yaml.safe_load(path.read_text())["stage"]
        config = resolve_config(stage, files=[path])
        assert config.stage == stage


def test_print_config_and_clear_errors(tmp_path, capsys):
    from rynnvla_training.train.cli import main

    assert main(["stage3", "--print-config", "--set", "optim.lr=1e-4"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["optim"]["lr"] == 1e-4
    assert main(["stage3", "--set", "optim.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err
    assert main(["vae", "--output-dir", str(tmp_path), *QUIET]) == 2
    assert "data.lerobot_roots is empty" in capsys.readouterr().err
