# Source this file to enter the project environment in an interactive shell:
#   source scripts/activate.sh
# It enters the ROS world chosen by `make setup`, the virtualenv, the colcon install space, puts
# the console scripts on PATH, and keeps DDS traffic on this machine unless you set otherwise.
_rynnvla_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$_rynnvla_root/scripts/ros_world.sh"
ros_activate "$(ros_world)" "$_rynnvla_root/.venv"
set +u
if [[ -f "$_rynnvla_root/install/setup.bash" ]]; then
  # shellcheck disable=SC1091
  source "$_rynnvla_root/install/setup.bash"
fi
for _d in "$_rynnvla_root"/install/*/lib/rynnvla_*; do
  [[ -d "$_d" ]] && PATH="$_d:$PATH"
done
export PATH
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_LOCALHOST_ONLY="${ROS_LOCALHOST_ONLY:-1}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 1 ))}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYTHONUNBUFFERED=1
# Idle OpenMP threads sleep instead of spinning (spinning starves DDS/physics threads).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
unset _d _rynnvla_root
