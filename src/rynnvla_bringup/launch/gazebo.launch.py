"""An arm behind ros2_control (joint_state_broadcaster + joint_trajectory_controller) and the
policy node, with the hardware chosen by ONE argument:

    ros2 launch rynnvla_bringup gazebo.launch.py checkpoint:=/path/ckpt              # Gazebo
    ros2 launch rynnvla_bringup gazebo.launch.py hardware:=mock checkpoint:=...      # no physics
    ros2 launch rynnvla_bringup gazebo.launch.py hardware:=real robot:=so101 \\
        hardware_plugin:=<driver_pkg>/<SystemInterface> hardware_params:="port=/dev/ttyACM0"

gazebo -> gz_ros2_control/GazeboSimSystem (Gazebo Harmonic via ros_gz_sim), mock ->
mock_components/GenericSystem, real -> your driver's plugin. The URDF (with its <ros2_control>
block) is generated from the robot profile by rynnvla_bringup.robot_description (link lengths of
the MuJoCo arm); the controllers come from ONE file (config/controllers.yaml) for all three.
Cameras are not simulated here: point `camera_topics` at your camera drivers (until images
arrive the policy holds the arm, its inputs being stale).
"""

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from rynnvla_bringup.launch_helpers import declare_arguments
from rynnvla_bringup.params import controllers_path, parse_bool, policy_layers, read_yaml
from rynnvla_bringup.robot_description import (
    HARDWARE_CHOICES,
    parse_hardware_params,
    urdf,
)

ARGUMENTS = (
    ("hardware", "gazebo", "ros2_control hardware: gazebo (gz_ros2_control/GazeboSimSystem), "
     "mock (mock_components/GenericSystem) or real (the plugin named by hardware_plugin)."),
    ("hardware_plugin", "", "ros2_control plugin of the real robot's driver (hardware:=real), "
     "e.g. <driver_package>/<SystemInterface class>."),
    ("hardware_params", "", "Driver parameters for hardware:=real as key=value;key=value "
     "(written as <param> entries of the <hardware> block)."),
    ("robot", "sim_arm", "Robot profile (joint names and limits of the URDF and of the policy node)."),
    ("controllers", "", "Controller YAML; empty = rynnvla_bringup/config/controllers.yaml "
     "(its joints must equal the profile's joint_names)."),
    ("world", "empty.sdf", "Gazebo world file (hardware:=gazebo)."),
    ("gz_args", "-r -s", "Extra gz sim arguments (-r: run at start, -s: server only / headless)."),
    ("start_policy", "true", "Start the policy node (false: only the arm and its controllers)."),
    ("checkpoint", "", "Checkpoint directory of the policy (required when start_policy is true)."),
    ("output_enabled", "", "Send chunks to the controller; empty = the profile's."),
    ("camera_topics", "", "Comma-separated camera topics of the policy; empty = the profile's."),
    ("instruction", "", "Initial instruction of the policy; empty = wait for set_instruction."),
    ("log_level", "info", "Logging level of the policy node."),
)  # fmt: skip

CONTROLLER_MANAGER = "/controller_manager"
ARM_CONTROLLER = "arm_controller"
STATE_BROADCASTER = "joint_state_broadcaster"


def _arg(context, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _check_controller_joints(controllers: str, joints: list[str]) -> None:
    configured = read_yaml(controllers).get(ARM_CONTROLLER, {}).get("ros__parameters", {})
    if list(configured.get("joints", [])) != list(joints):
        raise RuntimeError(
            f"{controllers}: {ARM_CONTROLLER}.joints={configured.get('joints')} differ from the "
            f"robot profile's joint_names={joints}; pass a matching file with controllers:="
        )


def _arm(context):
    hardware = _arg(context, "hardware")
    if hardware not in HARDWARE_CHOICES:
        raise RuntimeError(f"hardware:={hardware!r}: expected one of {list(HARDWARE_CHOICES)}")
    on_gazebo = hardware == "gazebo"
    profile = policy_layers(_arg(context, "robot")).merged()
    controllers = _arg(context, "controllers") or str(controllers_path())
    _check_controller_joints(controllers, profile["joint_names"])
    description = urdf(
        profile,
        hardware,
        driver_plugin=_arg(context, "hardware_plugin"),
        hardware_params=parse_hardware_params(_arg(context, "hardware_params")),
        controllers_file=controllers,
    )
    actions = [
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": description, "use_sim_time": on_gazebo}],
            output="screen",
        )
    ]
    if on_gazebo:
        actions += _gazebo(context)
    else:  # mock and real hardware: the controller manager runs as its own node
        actions.append(
            Node(
                package="controller_manager",
                executable="ros2_control_node",
                parameters=[controllers],
                remappings=[("~/robot_description", "/robot_description")],
                output="screen",
            )
        )
    actions += [
        Node(
            package="controller_manager",
            executable="spawner",
            arguments=[
                name,
                "--controller-manager",
                CONTROLLER_MANAGER,
                "--param-file",
                controllers,
            ],
            output="screen",
        )
        for name in (STATE_BROADCASTER, ARM_CONTROLLER)
    ]
    return actions


def _gazebo(context):
    gz_args = f"{_arg(context, 'gz_args')} {_arg(context, 'world')}"
    return [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])
            ),
            launch_arguments={"gz_args": gz_args, "on_exit_shutdown": "true"}.items(),
        ),
        Node(
            package="ros_gz_sim",
            executable="create",
            arguments=[
                "-topic",
                "robot_description",
                "-name",
                "rynnvla_arm",
                "-allow_renaming",
                "true",
            ],
            output="screen",
        ),
        Node(
            package="ros_gz_bridge",
            executable="parameter_bridge",
            arguments=["/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock"],
            output="screen",
        ),
    ]


def _policy(context):
    if not parse_bool(_arg(context, "start_policy"), "start_policy"):
        return []
    if not _arg(context, "checkpoint"):
        raise RuntimeError("checkpoint:= is required with start_policy:=true")
    return [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([ThisLaunchFileDir(), "policy.launch.py"])
            ),
            launch_arguments={
                "robot": _arg(context, "robot"),
                "checkpoint": _arg(context, "checkpoint"),
                "output_enabled": _arg(context, "output_enabled"),
                "camera_topics": _arg(context, "camera_topics"),
                "instruction": _arg(context, "instruction"),
                "use_sim_time": "true" if _arg(context, "hardware") == "gazebo" else "false",
                "log_level": _arg(context, "log_level"),
            }.items(),
        )
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *declare_arguments(ARGUMENTS),
            OpaqueFunction(function=_arm),
            OpaqueFunction(function=_policy),
        ]
    )
