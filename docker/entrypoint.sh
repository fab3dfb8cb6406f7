#!/usr/bin/env bash
# Enter the workspace environment (system ROS + venv + colcon install space), then run the command.
set -e
source /ws/scripts/activate.sh
exec "$@"
