"""The RynnVLA policy node for a robot: `ros2 launch rynnvla_bringup policy.launch.py
robot:=so100 checkpoint:=/path/to/checkpoint`.

Parameters are layered by rynnvla_bringup.params (the same code `rynnvla-run` uses): the
node's defaults (rynnvla_policy/config/policy_node.yaml), the robot profile
(config/robots/<robot>.yaml), `params_file` if given, then the arguments below that are not
empty. Hardware profiles start in dry run (output_enabled false): enable with
`ros2 service call /rynnvla_policy/enable_output std_srvs/srv/SetBool "{data: true}"`.
"""

from launch import LaunchDescription
from launch.actions import OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

from rynnvla_bringup.launch_helpers import declare_arguments
from rynnvla_bringup.params import POLICY_NODE, policy_layers, policy_overrides_from_args

ARGUMENTS = (
    ("robot", "so100", "Robot profile: a name in rynnvla_bringup/config/robots "
     "(sim_arm, so100, so101, generic_6dof) or a path to a YAML file of the same form."),
    ("checkpoint", None, "Checkpoint directory of the policy (config.json, model.safetensors, ...)."),
    ("device", "", "Torch device for inference (cpu, cuda, cuda:1); empty = the node default (cpu)."),
    ("camera_topics", "", "Comma-separated camera topics in the order of the profile's "
     "camera_names (front, wrist); empty = the profile's."),
    ("camera_compressed", "", "Comma-separated true/false per camera: sensor_msgs/CompressedImage "
     "instead of Image; empty = the profile's."),
    ("joint_states_topic", "", "sensor_msgs/JointState topic; empty = the profile's (/joint_states)."),
    ("controller_topic", "", "trajectory_msgs/JointTrajectory topic of the joint_trajectory_controller; "
     "empty = the profile's (/arm_controller/joint_trajectory)."),
    ("output_enabled", "", "true: send chunks to the controller at once; false: dry run; "
     "empty = the profile's (false on hardware)."),
    ("auto_activate", "true", "true: the node configures and activates itself (no lifecycle "
     "manager needed); false: it waits for lifecycle transitions."),
    ("instruction", "", "Initial language instruction; empty = wait for "
     "/rynnvla_policy/set_instruction."),
    ("params_file", "", "Extra policy-node parameter YAML applied after the robot profile."),
    ("use_sim_time", "false", "Use /clock (true with a simulator running faster than real time "
     "or Gazebo)."),
    ("namespace", "", "ROS namespace of the node."),
    ("log_level", "info", "Logging level of the node (debug, info, warn, error)."),
)  # fmt: skip


STOP_TIMEOUT_S = "20"


def _arg(context, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _policy_node(context):
    args = {name: _arg(context, name) for name, _, _ in ARGUMENTS}
    extra = [args["params_file"]] if args["params_file"] else []
    layers = policy_layers(args["robot"], policy_overrides_from_args(args), extra_files=extra)
    return [
        LifecycleNode(
            package=POLICY_NODE.package,
            executable=POLICY_NODE.executable,
            name=POLICY_NODE.node_name,
            namespace=args["namespace"],
            parameters=layers.launch_parameters(),
            arguments=["--ros-args", "--log-level", args["log_level"]],
            output="screen",
            emulate_tty=True,
            # On Ctrl-C the node lets an inference in progress finish, then commands a hold:
            # give it that long (seconds on a CPU) before launch escalates to SIGTERM.
            sigterm_timeout=STOP_TIMEOUT_S,
        )
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*declare_arguments(ARGUMENTS), OpaqueFunction(function=_policy_node)])
