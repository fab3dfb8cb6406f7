# Shared by setup.sh and activate.sh: which ROS 2 world we are in, and how to enter it.

# Prints the path of a system ROS 2 setup.bash (Jazzy or newer), or "wheels" when there is none.
ros_world() {
  local candidate
  if [[ -n "${RYNNVLA_ROS_SETUP:-}" ]]; then echo "$RYNNVLA_ROS_SETUP"; return; fi
  for candidate in /opt/ros/{rolling,lyrical,kilted,jazzy}/setup.bash; do
    if [[ -f "$candidate" ]]; then echo "$candidate"; return; fi
  done
  echo wheels
}

# ros_activate WORLD VENV: source the system ROS (if any), the virtualenv and the ament paths.
ros_activate() {
  local world="$1" venv="$2"
  set +u
  if [[ "$world" != wheels ]]; then
    # shellcheck disable=SC1090
    source "$world"
  fi
  # shellcheck disable=SC1091
  source "$venv/bin/activate"
  if [[ "$world" == wheels ]]; then
    export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  fi
  set -u
}
