"""The `policy_node` entry point as its own process: YAML parameters, auto-activation, and a
hold command on Ctrl-C / SIGTERM before a clean exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_entry_point_runs_from_yaml_and_holds_on_exit(
    stop_signal, node_params, robot, executor, spin_until, tmp_path
):
    params = node_params(auto_activate=True)
    params_file = tmp_path / "policy.yaml"
    params_file.write_text(yaml.safe_dump({"rynnvla_policy": {"ros__parameters": params}}))
    log = tmp_path / "node.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from rynnvla_policy.node.main import main; sys.exit(main())",
                "--ros-args",
                "--params-file",
                str(params_file),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        try:
            executor.add_node(robot.node)
            assert spin_until(
                executor,
                lambda: len(robot.rec.trajectories) >= 1 or process.poll() is not None,
                90.0,
            ), log.read_text()
            assert process.poll() is None, log.read_text()
            process.send_signal(stop_signal)
            assert spin_until(executor, lambda: process.poll() is not None, 30.0)
            assert spin_until(
                executor, lambda: len(robot.rec.trajectories[-1][1].points) == 1, 5.0
            ), "no hold command before exit"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert process.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()
