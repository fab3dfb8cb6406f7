"""`evaluate(config)`: seeded episodes per task on the simulated arm, through the sim node and
the policy node running in the composed runner (rynnvla_bringup.composed), with videos."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rynnvla_training.evaluate.config import EvalConfig, EvalConfigError
from rynnvla_training.evaluate.episode import Rollout, run_episode
from rynnvla_training.evaluate.report import EvalReport
from rynnvla_training.evaluate.video import VideoContext, render_rollout

RESULTS_FILE = "results.json"
MAX_CONSECUTIVE_ERRORS = 3


class EvalAbortedError(RuntimeError):
    """The evaluation stopped early; `report` holds the episodes run so far."""

    def __init__(self, message: str, report: EvalReport):
        super().__init__(message)
        self.report = report


VIDEO_DIR = "videos"


def check_tasks(config: EvalConfig) -> None:
    from rynnvla_sim.tasks import TASKS

    unknown = [t for t in config.episodes if t not in TASKS]
    if unknown:
        raise EvalConfigError(f"episodes: unknown task ids {unknown}; the sim has {sorted(TASKS)}")


def composed_config(config: EvalConfig):
    """The composed runner's settings for an evaluation: no initial instruction (each episode
    sets its own), real-time factor as configured."""
    from rynnvla_bringup.composed import ComposedConfig

    policy = {"instruction": "", **config.policy_overrides}
    return ComposedConfig(
        checkpoint=config.checkpoint,
        robot=config.robot,
        with_sim=True,
        policy_overrides=policy,
        sim_overrides=dict(config.sim_overrides),
        real_time_factor=config.real_time_factor,
    )


def evaluate(config: EvalConfig, log=print, on_episode=None) -> EvalReport:
    """Start the system, run every episode, write results.json (and videos); return the report.

    on_episode(result): called after each episode (a shard streams its results with it)."""
    from rynnvla_bringup.composed import ComposedSystem

    check_tasks(config)
    started = time.monotonic()
    with ComposedSystem(composed_config(config)) as system:
        startup_s = time.monotonic() - started
        log(f"rynnvla-eval: system up in {startup_s:.1f} s; {config.total_episodes} episodes")
        try:
            report = run_episodes(system, config, on_episode)
        except EvalAbortedError as exc:  # keep what was measured, then report the failure
            exc.report.write_json(config.out_dir / RESULTS_FILE)
            raise
        report.startup_s = startup_s
    report.wall_s = time.monotonic() - started
    report.write_json(config.out_dir / RESULTS_FILE)
    return report


def run_episodes(system, config: EvalConfig, on_episode=None) -> EvalReport:
    """Every configured episode on a running ComposedSystem (also used by the demo)."""
    from tqdm import tqdm

    params = system.policy.params
    camera_topic = params.camera_topic_map.get(config.video_camera)
    if config.videos_per_task and camera_topic is None:
        raise EvalConfigError(
            f"video_camera={config.video_camera!r}: the policy has cameras {list(params.camera_names)}"
        )
    limits = {
        name: (lo, hi)
        for name, lo, hi in zip(
            params.joint_names, params.joint_lower_limits, params.joint_upper_limits, strict=True
        )
    }
    report = EvalReport(str(config.checkpoint), [], settings=settings_of(config))
    bar = tqdm(total=config.total_episodes, desc="eval", unit="ep", disable=not config.progress)
    for task in config.episodes:
        for index, seed in enumerate(config.seeds(task)):
            record = camera_topic if index < config.videos_per_task else None
            result, rollout = run_episode(
                system.client,
                task,
                seed,
                config.timeout_s,
                real_time_factor=config.real_time_factor,
                distractors=config.distractors,
                record_topic=record,
                record_fps=config.video_fps,
                chunk_timeout_s=config.chunk_timeout_s,
            )
            if rollout is not None and rollout.frames:
                result.video = str(_write_video(config, result, rollout, limits))
                report.videos.append(result.video)
            report.episodes.append(result)
            if on_episode is not None:
                on_episode(result)
            bar.update(1)
            bar.set_postfix_str(_postfix(report))
            _check_not_broken(report)
    bar.close()
    return report


def _check_not_broken(report: EvalReport) -> None:
    """Stop after MAX_CONSECUTIVE_ERRORS broken episodes: the system, not the policy, fails."""
    last = report.episodes[-MAX_CONSECUTIVE_ERRORS:]
    if len(last) == MAX_CONSECUTIVE_ERRORS and all(e.error for e in last):
        raise EvalAbortedError(
            f"{MAX_CONSECUTIVE_ERRORS} episodes in a row failed to run; the last: {last[-1].error}",
            report,
        )


def _write_video(config: EvalConfig, result, rollout: Rollout, limits) -> Path:
    joints = rollout.joint_names or tuple(limits)  # chunk columns follow the chunk's order
    ctx = VideoContext(
        instruction=result.instruction,
        task_id=result.task_id,
        seed=result.seed,
        joint_names=joints,
        lower=np.array([limits[j][0] for j in joints]),
        upper=np.array([limits[j][1] for j in joints]),
        success=result.success,
        time_to_success_s=result.time_to_success_s,
        start_ns=rollout.start_ns,
    )
    path = config.out_dir / VIDEO_DIR / f"{result.task_id}_seed{result.seed}.mp4"
    return render_rollout(path, rollout.frames, rollout.chunks, ctx, config.video_fps)


def _postfix(report: EvalReport) -> str:
    return " ".join(f"{task}:{s.successes}/{s.episodes}" for task, s in report.tasks().items())


def settings_of(config: EvalConfig) -> dict:
    return {
        "mode": "ros",
        "episodes": dict(config.episodes),
        "seed_start": config.seed_start,
        "timeout_s": config.timeout_s,
        "real_time_factor": config.real_time_factor,
        "robot": config.robot,
        "distractors": config.distractors,
        "policy_overrides": dict(config.policy_overrides),
        "sim_overrides": dict(config.sim_overrides),
    }
