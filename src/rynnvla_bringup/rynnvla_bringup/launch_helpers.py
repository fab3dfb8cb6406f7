"""What every launch file of rynnvla_bringup builds the same way.

`launch` is imported inside the functions, not at the top: this module stays importable where
ROS 2 launch is not installed (the static launch-file tests import every rynnvla_bringup helper
a launch file names, on any machine).
"""

from __future__ import annotations

from collections.abc import Iterable


def declare_arguments(arguments: Iterable[tuple[str, str | None, str]]) -> list:
    """One DeclareLaunchArgument per `(name, default, description)` row of a launch file's
    ARGUMENTS table; a default of None makes the argument required (no default value)."""
    from launch.actions import DeclareLaunchArgument

    return [
        DeclareLaunchArgument(name, description=text)
        if default is None
        else DeclareLaunchArgument(name, default_value=default, description=text)
        for name, default, text in arguments
    ]
