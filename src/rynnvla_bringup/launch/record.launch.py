"""Record demonstrations for training: `ros2 launch rynnvla_bringup record.launch.py
output:=demos/episode_001`.

Runs `ros2 bag record` (MCAP) of EXACTLY the topics the converter's mapping reads (cameras,
joint states, the trajectory commands, the instruction), by default those of
rynnvla_training/config/convert_default.yaml, so `rynnvla-convert` finds every stream it
needs and nothing else is recorded. Stop with Ctrl-C; convert with
`rynnvla-convert <bags> <dataset>` (same --config as `mapping` here if you changed it).
"""

from launch import LaunchDescription
from launch.actions import ExecuteProcess, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from rynnvla_bringup.launch_helpers import declare_arguments
from rynnvla_bringup.recording import STORAGE, converter_topics, record_command

ARGUMENTS = (
    ("output", "", "Bag directory to create; empty = ros2 bag's timestamped default name."),
    ("mapping", "", "Converter mapping YAML (rynnvla-convert --config); empty = "
     "rynnvla_training/config/convert_default.yaml."),
    ("max_bag_duration", "0", "Split the bag every this many seconds (0 = one file)."),
)  # fmt: skip


def _arg(context, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _recorder(context):
    topics = converter_topics(_arg(context, "mapping") or None)
    extra = []
    if float(_arg(context, "max_bag_duration")) > 0:
        extra = ["--max-bag-duration", str(int(float(_arg(context, "max_bag_duration"))))]
    return [
        LogInfo(msg=f"recording {STORAGE} bag of {topics}"),
        ExecuteProcess(
            cmd=record_command(topics, output=_arg(context, "output"), extra=extra),
            output="screen",
            # SIGINT lets rosbag2 close the MCAP file properly (index and summary written)
            sigterm_timeout="10",
        ),
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*declare_arguments(ARGUMENTS), OpaqueFunction(function=_recorder)])
