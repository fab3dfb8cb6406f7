"""Closed-loop evaluation on the simulated arm through the real ROS nodes (`rynnvla-eval`).

`evaluate(EvalConfig(...))` starts the sim node and the policy node in one process
(rynnvla_bringup.composed), runs seeded episodes per task through /sim/reset_episode and
/rynnvla_policy/set_instruction, and returns an `EvalReport` (success per task, episode times,
latency, rollout videos). The CLI is `rynnvla-eval` (cli.py).
"""

from rynnvla_training.evaluate.config import EvalConfig, EvalConfigError, parse_episodes
from rynnvla_training.evaluate.report import EvalReport

__all__ = ["EvalConfig", "EvalConfigError", "EvalReport", "evaluate", "parse_episodes"]


def __getattr__(name: str):
    # evaluate() pulls in rclpy and the nodes: import it only when asked for.
    if name == "evaluate":
        from rynnvla_training.evaluate.runner import evaluate

        return evaluate
    raise AttributeError(name)
