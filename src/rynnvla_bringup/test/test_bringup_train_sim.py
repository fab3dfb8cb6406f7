"""scripts/train_sim.py (`make train-sim`): its per-stage configs are accepted by the trainer,
its command lines name real CLIs and options, and shipping never leaves a half-copied policy.
(The whole pipeline takes most of an hour; `python scripts/train_sim.py --quick` runs it small.)"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def train_sim():
    spec = importlib.util.spec_from_file_location("train_sim", ROOT / "scripts" / "train_sim.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_sim"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("train_sim", None)


@pytest.fixture
def pipeline(train_sim, tmp_path):
    args = train_sim.build_parser().parse_args(["--out", str(tmp_path / "run"), "--steps", "vae=7"])
    return train_sim.pipeline_from_args(args)


@pytest.mark.parametrize("stage", ["vqgan", "vae", "stage3"])
def test_stage_configs_are_accepted_by_the_trainer(train_sim, pipeline, tmp_path, stage):
    from rynnvla_training.train.stages import resolve_config

    run_config = tmp_path / f"{stage}.yaml"
    run_config.write_text(yaml.safe_dump(pipeline.stage_overrides(stage)))
    config = resolve_config(stage, None, [train_sim.shipped_config(stage), run_config])
    assert Path(config.output_dir) == pipeline.stage_dir(stage)
    assert list(config.data.lerobot_roots) == [str(pipeline.dataset)]
    if stage == "vae":
        assert config.loop.max_steps == 7
    if stage == "stage3":
        assert Path(config.model.action_vae) == pipeline.stage_dir("vae") / "final"
        assert not config.model.image_tokenizer  # default: k-means codebook fitted in stage 3
        assert not config.dist.compile_blocks  # eager, as the shipped policy was trained
    if stage == "vqgan":
        assert list(config.data.manifests) == []


def test_vqgan_tokenizer_mode_trains_vqgan_and_feeds_it_to_stage3(train_sim, tmp_path):
    from rynnvla_training.train.stages import resolve_config

    args = train_sim.build_parser().parse_args(
        ["--out", str(tmp_path / "run"), "--image-tokenizer", "vqgan"]
    )
    pipeline = train_sim.pipeline_from_args(args)
    assert pipeline.train_stages == ("vqgan", "vae", "stage3")
    run_config = tmp_path / "stage3.yaml"
    run_config.write_text(yaml.safe_dump(pipeline.stage_overrides("stage3")))
    config = resolve_config("stage3", None, [train_sim.shipped_config("stage3"), run_config])
    assert Path(config.model.image_tokenizer) == pipeline.stage_dir("vqgan") / "final"
    # the recipe's default step count reaches the trainer
    assert config.loop.max_steps == train_sim.parse_steps(train_sim.DEFAULT_STEPS)["stage3"]
    assert config.loop.max_steps > 1000


def test_a_dagger_round_trains_the_last_policy_on_every_dataset(train_sim, tmp_path):
    from rynnvla_training.train.stages import resolve_config

    args = train_sim.build_parser().parse_args(["--out", str(tmp_path / "run")])
    pipeline = train_sim.pipeline_from_args(args)  # the recipe's defaults

    run_config = tmp_path / "stage3_dagger2.yaml"
    run_config.write_text(yaml.safe_dump(pipeline.dagger_overrides(2)))
    shipped = [train_sim.shipped_config("stage3"), train_sim.shipped_config("stage3_dagger")]
    config = resolve_config("stage3", None, [*shipped, run_config])
    assert Path(config.init) == pipeline.round_checkpoint(1) != pipeline.round_checkpoint(0)
    assert list(config.data.lerobot_roots) == [
        str(pipeline.dataset),
        str(pipeline.round_dataset(1)),
        str(pipeline.round_dataset(2)),
    ]
    assert Path(config.output_dir) == pipeline.stage_dir("stage3_dagger2")
    # one frame cache for every round: the expert's dataset is encoded once
    round0 = pipeline.stage_overrides("stage3")["data"]["frame_cache_dir"]
    assert config.data.frame_cache_dir == round0 == str(pipeline.frame_cache)
    assert config.loop.max_steps == train_sim.parse_steps(train_sim.DEFAULT_STEPS)["dagger"]
    assert config.optim.lr < resolve_config("stage3", None, shipped[:1]).optim.lr
    assert pipeline.checkpoint == pipeline.round_checkpoint(train_sim.DEFAULT_DAGGER_ROUNDS)


def test_compile_flag_compiles_stage3_except_in_quick_runs(train_sim, tmp_path):
    def overrides(*flags):
        args = train_sim.build_parser().parse_args(["--out", str(tmp_path / "run"), *flags])
        return train_sim.pipeline_from_args(args).stage_overrides("stage3")

    assert "dist" not in overrides()  # eager by default
    assert overrides("--compile")["dist"] == {"compile_blocks": True}
    assert "dist" not in overrides("--compile", "--quick")


def test_default_pipeline_skips_the_vqgan_stage(pipeline):
    assert pipeline.train_stages == ("vae", "stage3")


def test_commands_use_real_options(train_sim, pipeline, monkeypatch):
    commands = {}
    monkeypatch.setattr(pipeline, "run", lambda name, cmd: commands.update({name: cmd}) or {})
    pipeline.collect()
    pipeline.convert()
    pipeline.evaluate()
    from rynnvla_sim.collect import build_parser as collect_parser
    from rynnvla_training.convert.cli import _parser as convert_parser
    from rynnvla_training.evaluate.cli import build_parser as eval_parser

    collected = {}
    for task in pipeline.demos:
        collect = collect_parser().parse_args(commands[f"collect-{task}"][1:])
        collected[collect.task] = collect.episodes
    recipe = train_sim.parse_demos(train_sim.DEFAULT_DEMOS)
    assert collected == pipeline.demos == recipe
    assert set(recipe) == {"block_to_plate", "strawberry_to_bowl", "pen_to_holder"}
    assert convert_parser().parse_args(commands["convert"][1:]).config is None  # as shipped
    pipeline.convert_config = train_sim.shipped_file(train_sim.CONVERT_CONFIG)
    pipeline.convert()
    lossless = convert_parser().parse_args(commands["convert"][1:]).config
    assert Path(lossless).name == train_sim.CONVERT_CONFIG and Path(lossless).is_file()
    pipeline.dagger(1)
    leads = {}
    for task in pipeline.lead_ins:
        lead = collect_parser().parse_args(commands[f"collect-dagger1-{task}"][1:])
        assert lead.lead_in_policy == pipeline.round_checkpoint(0)
        # recovery seeds: past the expert's demonstrations, before the evaluation's 100000
        assert max(recipe.values()) * 2 < lead.seed and lead.seed + 2 * lead.episodes < 100_000
        leads[lead.task] = lead.episodes
    assert leads == train_sim.parse_demos(train_sim.DEFAULT_LEAD_INS)
    converted = convert_parser().parse_args(commands["convert-dagger1"][1:])
    assert Path(converted.output) == pipeline.round_dataset(1)
    assert commands["stage3_dagger1"][:2] == ["rynnvla-train", "stage3"]
    evaluation = eval_parser().parse_args(commands["eval"][1:])
    assert evaluation.episodes.startswith("block_to_plate=50")
    assert evaluation.workers == train_sim.EVAL_WORKERS
    assert shutil.which(commands["collect-pen_to_holder"][0]) and shutil.which(commands["eval"][0])


def test_ship_replaces_the_policy_in_one_move(train_sim, tmp_path):
    checkpoint = tmp_path / "final"
    (checkpoint / "action_vae").mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    (checkpoint / "action_vae" / "config.json").write_text("{}")
    target = tmp_path / "checkpoints" / "sim_policy"
    target.mkdir(parents=True)
    (target / "stale.bin").write_text("old")
    train_sim.ship(checkpoint, {"stages": {}}, target)
    assert sorted(p.name for p in target.iterdir()) == [
        "action_vae",
        "config.json",
        "train_sim.json",
    ]
    assert json.loads((target / "train_sim.json").read_text()) == {"stages": {}}
    assert [p.name for p in target.parent.iterdir()] == ["sim_policy"]


def test_bad_steps_and_a_used_run_directory_are_refused(train_sim, tmp_path):
    with pytest.raises(train_sim.PipelineError, match="stage4=3"):
        train_sim.parse_steps("stage4=3")
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("")
    args = train_sim.build_parser().parse_args(["--out", str(used)])
    with pytest.raises(train_sim.PipelineError, match="--resume"):
        train_sim.pipeline_from_args(args)
