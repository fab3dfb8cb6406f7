"""The simulated arm (MuJoCo sim node) and the policy node driving it:
`ros2 launch rynnvla_bringup sim.launch.py checkpoint:=/path/to/checkpoint`.

The sim node reads rynnvla_sim/config/sim_node.yaml (then `sim_params_file`, then the
arguments below); the policy node is policy.launch.py with the `sim_arm` profile. Episodes:
`ros2 service call /sim/reset_episode rynnvla_msgs/srv/ResetEpisode "{task_id: pen_to_holder,
seed: 3}"`, then set the instruction through /rynnvla_policy/set_instruction.
"""

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir
from launch_ros.actions import Node

from rynnvla_bringup.launch_helpers import declare_arguments
from rynnvla_bringup.params import (
    SIM_NODE,
    parse_bool,
    parse_float,
    sim_layers,
)

ARGUMENTS = (
    ("checkpoint", None, "Checkpoint directory of the policy."),
    ("robot", "sim_arm", "Robot profile of the policy node (sim_arm matches the simulated arm)."),
    ("task", "block_to_plate", "First episode's task: block_to_plate, strawberry_to_bowl or "
     "pen_to_holder (/sim/reset_episode starts others)."),
    ("seed", "0", "Object layout seed of the first episode (>= 0)."),
    ("distractors", "false", "Put distractor objects on the table."),
    ("real_time_factor", "1.0", "Simulated seconds per wall-clock second (1 = real time)."),
    ("use_sim_time", "true", "The sim publishes /clock and the policy node runs on it (robust "
     "when the sim falls behind on a busy machine); forced true when real_time_factor != 1."),
    ("instruction", "auto", "Initial instruction of the policy; auto = the first task's "
     "instruction, empty = wait for /rynnvla_policy/set_instruction."),
    ("device", "", "Torch device for inference (cpu, cuda); empty = the node default (cpu)."),
    ("output_enabled", "", "Send chunks to the simulated controller; empty = the profile's "
     "(true for sim_arm)."),
    ("auto_activate", "true", "The policy node configures and activates itself."),
    ("params_file", "", "Extra policy-node parameter YAML applied after the robot profile."),
    ("sim_params_file", "", "Extra sim-node parameter YAML applied after sim_node.yaml."),
    ("log_level", "info", "Logging level of both nodes."),
)  # fmt: skip


def _arg(context, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _nodes(context):
    args = {name: _arg(context, name) for name, _, _ in ARGUMENTS}
    rtf = parse_float(args["real_time_factor"], "real_time_factor")
    sim_time = parse_bool(args["use_sim_time"], "use_sim_time") or rtf != 1.0
    sim_overrides = {
        "task_id": args["task"],
        "seed": int(args["seed"]),
        "distractors": parse_bool(args["distractors"], "distractors"),
        "real_time_factor": rtf,
        "publish_clock": sim_time,
    }
    extra = [args["sim_params_file"]] if args["sim_params_file"] else []
    sim = Node(
        package=SIM_NODE.package,
        executable=SIM_NODE.executable,
        name=SIM_NODE.node_name,
        parameters=sim_layers(sim_overrides, extra_files=extra).launch_parameters(),
        arguments=["--ros-args", "--log-level", args["log_level"]],
        output="screen",
        emulate_tty=True,
    )
    instruction = args["instruction"]
    if instruction == "auto":
        from rynnvla_sim.tasks import TASKS

        instruction = TASKS.get(args["task"], "")
    policy = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([ThisLaunchFileDir(), "policy.launch.py"])
        ),
        launch_arguments={
            "robot": args["robot"],
            "checkpoint": args["checkpoint"],
            "device": args["device"],
            "output_enabled": args["output_enabled"],
            "auto_activate": args["auto_activate"],
            "instruction": instruction,
            "params_file": args["params_file"],
            "use_sim_time": "true" if sim_time else "false",
            "log_level": args["log_level"],
        }.items(),
    )
    return [sim, policy]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*declare_arguments(ARGUMENTS), OpaqueFunction(function=_nodes)])
