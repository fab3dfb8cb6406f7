"""`rynnvla-eval --direct`: the model alone in a closed loop on the simulated arm, in sim time.

Each step: render the cameras and read the joints at one instant, run `PolicyRunner.infer`,
execute the chunk's first `horizon` targets at the checkpoint's control rate, repeat. No ROS,
no latency, no overlap blending and no safety layer: it measures what the model can do when
everything around it is ideal, about ten times faster than real time on a 2-core CPU.

Use it to choose among checkpoints during training; the deployment figure is the default
evaluation through the ROS nodes, where observations arrive 30-100 ms late and chunks are
blended into the executing plan. The shipped tiny sim policy solved 27/50 green-block layouts
here and 25/50 through the nodes (the one before it 18/50 and 12/50).
"""

from __future__ import annotations

import time

import numpy as np

from rynnvla_training.evaluate.config import EvalConfig
from rynnvla_training.evaluate.episode import EpisodeResult
from rynnvla_training.evaluate.report import EvalReport


def default_horizon() -> int:
    """The policy node's default execution horizon (its YAML defaults' dataclass)."""
    from rynnvla_policy.node.params import PolicyNodeParams

    return PolicyNodeParams().execution_horizon


def run_direct_episode(runner, env, task: str, seed: int, timeout_s: float, horizon: int):
    """One seeded episode; returns its EpisodeResult (success, sim time, model latency)."""
    from rynnvla_policy.core.runner import Observation

    info = env.reset(task, seed)
    runner.reset()
    step_s = 1.0 / runner.contract.fps
    started = time.monotonic()
    result = EpisodeResult(task, seed, info["instruction"], False, -1.0, 0.0, 0.0, 0)
    while env.time < timeout_s and not result.success:
        observation = Observation(
            images={camera: env.render(camera) for camera in runner.contract.camera_names},
            state=env.joint_positions(),
            instruction=info["instruction"],
        )
        tic = time.perf_counter()
        chunk = runner.infer(observation).positions  # (chunk_length, joints) absolute targets
        result.inference_ms.append((time.perf_counter() - tic) * 1e3)
        result.chunks += 1
        for target in chunk[:horizon]:
            env.set_joint_targets(np.asarray(target))
            env.step(step_s)
            if env.success():
                result.success, result.time_to_success_s = True, round(env.time, 3)
                break
    result.duration_s = round(env.time, 3)
    result.wall_s = time.monotonic() - started
    return result


def evaluate_direct(config: EvalConfig, horizon: int, log=print) -> EvalReport:
    """Every configured episode in the direct loop; writes results.json like `evaluate`."""
    from rynnvla_policy.core.runner import PolicyRunner
    from rynnvla_sim.env import ArmSimEnv
    from rynnvla_training.evaluate.config import EvalConfigError
    from rynnvla_training.evaluate.runner import RESULTS_FILE, check_tasks, settings_of

    check_tasks(config)
    if horizon < 1:
        raise EvalConfigError(f"horizon={horizon!r}: expected an integer >= 1")
    started = time.monotonic()
    runner = PolicyRunner.from_pretrained(config.checkpoint)
    try:
        if horizon > runner.contract.chunk_length:
            raise EvalConfigError(
                f"horizon={horizon}: larger than the checkpoint's chunk of "
                f"{runner.contract.chunk_length} steps"
            )
        settings = {**settings_of(config), "mode": "direct", "horizon": horizon}
        report = EvalReport(str(config.checkpoint), [], settings=settings)
        report.startup_s = time.monotonic() - started
        log(f"rynnvla-eval --direct: model loaded in {report.startup_s:.1f} s; no ROS, sim time")
        _run_all(runner, ArmSimEnv(), config, horizon, report)
    finally:
        runner.close()
    report.wall_s = time.monotonic() - started
    report.write_json(config.out_dir / RESULTS_FILE)
    return report


def _run_all(runner, env, config: EvalConfig, horizon: int, report: EvalReport) -> None:
    from tqdm import tqdm

    bar = tqdm(total=config.total_episodes, desc="eval", unit="ep", disable=not config.progress)
    try:
        for task in config.episodes:
            for seed in config.seeds(task):
                episode = run_direct_episode(runner, env, task, seed, config.timeout_s, horizon)
                report.episodes.append(episode)
                bar.update(1)
    finally:
        bar.close()
        env.close()
