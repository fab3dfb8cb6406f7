"""`rynnvla-eval --direct`: the model alone in sim time (no ROS). It runs every task, executes
exactly `horizon` chunk steps between inferences, and refuses options it cannot honour."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the simulated arm needs mujoco (run `make setup`)")


def test_direct_eval_reports_every_task_in_sim_time(eval_checkpoint, tmp_path, capsys):
    from rynnvla_training.evaluate.cli import main

    out = tmp_path / "eval"
    args = ["--checkpoint", str(eval_checkpoint), "--episodes", "1", "--timeout", "2"]
    assert main([*args, "--out", str(out), "--quiet", "--direct", "--horizon", "5"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "direct"
    assert set(summary["success"]) == {"block_to_plate", "strawberry_to_bowl", "pen_to_holder"}
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["mode"] == "direct" and results["settings"]["horizon"] == 5
    assert results["videos"] == []
    for episode in results["episodes"]:
        if not episode["success"]:  # a random model: ran to the timeout, 5 steps per chunk
            assert episode["duration_s"] == pytest.approx(2.0, abs=0.01)
            # physics runs whole 2 ms steps: 12 chunks of 166.7 ms may end 2 ms short of 2 s
            assert episode["chunks"] in (math.ceil(2.0 * 30 / 5), math.ceil(2.0 * 30 / 5) + 1)


def test_each_chunk_runs_horizon_steps_then_the_next_observation_is_taken(eval_checkpoint):
    from rynnvla_policy.core.runner import PolicyRunner
    from rynnvla_sim.env import ArmSimEnv
    from rynnvla_training.evaluate.direct import run_direct_episode

    runner = PolicyRunner.from_pretrained(eval_checkpoint)
    env = ArmSimEnv()
    seen: list[tuple[float, np.ndarray, np.ndarray]] = []  # (sim time, state, chunk)
    infer = runner.infer

    def recording_infer(observation):
        result = infer(observation)
        seen.append((env.time, observation.state.copy(), result.positions.copy()))
        return result

    runner.infer = recording_infer
    try:
        result = run_direct_episode(runner, env, "block_to_plate", 7, 1.0, horizon=4)
    finally:
        env.close()
        runner.close()
    times = [t for t, _, _ in seen]
    assert times[0] == pytest.approx(0.0)
    # physics advances in whole 2 ms timesteps: 133.3 ms of chunk is 132 or 134 ms of sim
    assert all(b - a == pytest.approx(4 / 30, abs=0.0021) for a, b in itertools.pairwise(times))
    assert times[-1] == pytest.approx((len(times) - 1) * 4 / 30, abs=0.0021)  # no drift
    assert result.chunks == len(seen) and len(result.inference_ms) == len(seen)
    # the state of each observation is where the previous chunk's 4th target led the arm
    _, _, first_chunk = seen[0]
    _, second_state, _ = seen[1]
    assert abs(second_state - first_chunk[3]).max() < abs(seen[0][1] - first_chunk[3]).max()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--direct", "-p", "blend_steps:=3"], "--param: not used by --direct"),
        (["--direct", "--real-time-factor", "2"], "--real-time-factor: not used by --direct"),
        (["--horizon", "4"], "--horizon 4: only for --direct"),
        (["--direct", "--horizon", "99"], "horizon=99: larger than the checkpoint's chunk"),
    ],
)
def test_direct_mode_refuses_what_it_cannot_honour(
    eval_checkpoint, tmp_path, capsys, extra, message
):
    from rynnvla_training.evaluate.cli import main

    args = ["--checkpoint", str(eval_checkpoint), "--episodes", "1", "--out", str(tmp_path)]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err
