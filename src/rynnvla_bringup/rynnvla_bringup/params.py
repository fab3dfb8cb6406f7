"""Where the nodes' parameters come from: one layering, used by the launch files and `rynnvla-run`.

Layers, later wins:
  1. the node's own defaults file (`rynnvla_policy/config/policy_node.yaml`,
     `rynnvla_sim/config/sim_node.yaml`),
  2. for the policy node, the robot profile (`rynnvla_bringup/config/robots/<robot>.yaml`),
  3. overrides (launch arguments, command-line options, test settings).

Launch files give `ParamLayers.launch_parameters()` (file paths, then a dict) to launch_ros
`Node(parameters=...)`; the composed runner gives `ParamLayers.cli_args()`
(`--ros-args --params-file ...`) and `ParamLayers.overrides` (rclpy parameter overrides) to the
node constructors. Both end in rcl's parameter-file handling, so both resolve the same values;
`ParamLayers.merged()` computes them here (for checks, the URDF and reports).

No rclpy and no launch imports: launch files, tests and tools can all import this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BRINGUP_PACKAGE = "rynnvla_bringup"
ROBOTS_DIR = "config/robots"
CONTROLLERS_FILE = "config/controllers.yaml"
DEFAULT_ROBOT = "sim_arm"
ROBOT_PROFILE_SUFFIX = ".yaml"


class ParamsLayerError(ValueError):
    """A parameter file, robot profile or override is missing or malformed (message says which)."""


@dataclass(frozen=True)
class NodeSpec:
    """A node of the stack: where its executable is and which file holds its defaults."""

    package: str
    executable: str  # console script in lib/<package>/ (what launch_ros runs)
    node_name: str  # the name its YAML block and its ROS graph entry use
    defaults_file: str  # relative to the package's share directory (same path in src/)


POLICY_NODE = NodeSpec("rynnvla_policy", "policy_node", "rynnvla_policy", "config/policy_node.yaml")
SIM_NODE = NodeSpec("rynnvla_sim", "sim_node", "sim_node", "config/sim_node.yaml")
NODES = (POLICY_NODE, SIM_NODE)


# ---------------------------------------------------------------------------- file locations
def package_share(package: str) -> Path:
    """The share directory of `package`: the ament index (installed), else the source tree.

    The source-tree fallback serves checkouts that were not built with colcon; files keep the
    same relative paths there (config/, launch/).
    """
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError:
        pass
    else:
        try:
            return Path(get_package_share_directory(package))
        except (PackageNotFoundError, LookupError, ValueError):
            pass
    source = Path(__file__).resolve().parents[2] / package
    if (source / "package.xml").is_file():
        return source
    raise ParamsLayerError(
        f"package {package!r} is neither installed (ament index: source install/setup.bash) "
        f"nor found in the source tree at {source}"
    )


def defaults_file(spec: NodeSpec) -> Path:
    """The defaults YAML of a node; an error names the path when it is missing."""
    path = package_share(spec.package) / spec.defaults_file
    if not path.is_file():
        raise ParamsLayerError(f"{spec.node_name}: defaults file {path} does not exist")
    return path


def robot_profiles() -> dict[str, Path]:
    """Shipped robot profiles: name -> YAML path."""
    folder = package_share(BRINGUP_PACKAGE) / ROBOTS_DIR
    return {p.name[: -len(ROBOT_PROFILE_SUFFIX)]: p for p in sorted(folder.glob("*.yaml"))}


def robot_profile_path(robot: str | Path) -> Path:
    """A robot profile by shipped name (`so100`) or by path to a YAML file of the same form."""
    text = str(robot)
    if text.endswith(ROBOT_PROFILE_SUFFIX) or "/" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ParamsLayerError(f"robot profile file {text!r} does not exist")
        return path
    profiles = robot_profiles()
    if text not in profiles:
        raise ParamsLayerError(
            f"robot profile {text!r} is unknown; shipped profiles: {sorted(profiles)} "
            "(or give a path to a YAML file)"
        )
    return profiles[text]


def controllers_path() -> Path:
    """The ros2_control controller YAML shared by Gazebo, mock and real hardware."""
    path = package_share(BRINGUP_PACKAGE) / CONTROLLERS_FILE
    if not path.is_file():
        raise ParamsLayerError(f"controller configuration {path} does not exist")
    return path


# ---------------------------------------------------------------------------- reading YAML
def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from `path`; errors name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ParamsLayerError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ParamsLayerError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsLayerError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def node_params_in(data: Mapping[str, Any], node_name: str, source: str) -> dict[str, Any]:
    """The `ros__parameters` that a ROS params-file mapping gives `node_name`.

    Follows rcl's matching for the forms we use: `/**` (every node) first, then `node_name`
    or `/node_name` (more specific wins).
    """
    out: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        block = data.get(key)
        if block is None:
            continue
        if not isinstance(block, dict) or "ros__parameters" not in block:
            raise ParamsLayerError(f"{source}: `{key}:` must contain a `ros__parameters:` mapping")
        params = block["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise ParamsLayerError(f"{source}: `{key}: ros__parameters:` must be a mapping")
        out.update(_flatten(params))
    return out


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter mappings as dotted names (rcl's convention)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`name:=value` (ROS CLI form; `name=value` also accepted), value parsed as YAML."""
    sep = ":=" if ":=" in text else "="
    name, found, raw = text.partition(sep)
    name = name.strip()
    if not found or not name:
        raise ParamsLayerError(f"override {text!r}: expected name:=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ParamsLayerError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return name, value


# ---------------------------------------------------------------------------- layering
@dataclass(frozen=True)
class ParamLayers:
    """The parameter layers of one node: files (in order) then overrides."""

    node: NodeSpec
    files: tuple[Path, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def merged(self) -> dict[str, Any]:
        """The values the node will see for every parameter these layers set."""
        values: dict[str, Any] = {}
        for path in self.files:
            values.update(node_params_in(read_yaml(path), self.node.node_name, str(path)))
        values.update(self.overrides)
        return values

    def cli_args(self) -> list[str]:
        """`--ros-args --params-file f1 --params-file f2` for an rclpy Node's `cli_args`."""
        args = ["--ros-args"]
        for path in self.files:
            args += ["--params-file", str(path)]
        return args

    def launch_parameters(self) -> list[Any]:
        """launch_ros `Node(parameters=...)`: file paths first, then the overrides dict."""
        out: list[Any] = [str(p) for p in self.files]
        if self.overrides:
            out.append(dict(self.overrides))
        return out

    def with_overrides(self, **overrides: Any) -> ParamLayers:
        return ParamLayers(self.node, self.files, {**self.overrides, **overrides})


def policy_layers(
    robot: str | Path = DEFAULT_ROBOT,
    overrides: Mapping[str, Any] | None = None,
    extra_files: Sequence[str | Path] = (),
) -> ParamLayers:
    """Policy node: its defaults, the robot profile, `extra_files` (yours), then `overrides`."""
    files = (defaults_file(POLICY_NODE), robot_profile_path(robot), *_existing(extra_files))
    return ParamLayers(POLICY_NODE, files, dict(overrides or {}))


def sim_layers(
    overrides: Mapping[str, Any] | None = None, extra_files: Sequence[str | Path] = ()
) -> ParamLayers:
    """Sim node: its defaults, `extra_files`, then `overrides`."""
    files = (defaults_file(SIM_NODE), *_existing(extra_files))
    return ParamLayers(SIM_NODE, files, dict(overrides or {}))


def _existing(paths: Sequence[str | Path]) -> tuple[Path, ...]:
    out = []
    for path in paths:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ParamsLayerError(f"parameter file {str(path)!r} does not exist")
        out.append(path)
    return tuple(out)


def robot_profile(robot: str | Path = DEFAULT_ROBOT) -> dict[str, Any]:
    """The policy parameters as the robot profile layered on the node defaults (no overrides)."""
    return policy_layers(robot).merged()


# ---------------------------------------------------------------------------- launch arguments
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def parse_bool(text: str, name: str) -> bool:
    """A launch-argument boolean; anything but true/false words is an error naming `name`."""
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ParamsLayerError(f"{name}={text!r}: expected true or false")


def parse_list(text: str) -> list[str]:
    """`a, b` or `[a, b]` -> ["a", "b"] (launch arguments are strings)."""
    body = str(text).strip().strip("[]")
    return [item.strip().strip("'\"") for item in body.split(",") if item.strip()]


def parse_float(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ParamsLayerError(f"{name}={text!r}: expected a number") from None


def policy_overrides_from_args(args: Mapping[str, str]) -> dict[str, Any]:
    """Typed policy-node overrides from launch-argument strings; "" keeps the profile's value.

    Keys read: checkpoint, device, instruction, camera_topics, camera_compressed,
    joint_states_topic, controller_topic, output_enabled, auto_activate, use_sim_time.
    """
    out: dict[str, Any] = {}

    def given(key: str) -> str:
        return str(args.get(key, "")).strip()

    if given("checkpoint"):
        out["checkpoint_path"] = str(Path(given("checkpoint")).expanduser())
    for key, name in (
        ("device", "device"),
        ("instruction", "instruction"),
        ("joint_states_topic", "joint_states_topic"),
        ("controller_topic", "controller_topic"),
    ):
        if given(key):
            out[name] = given(key)
    if given("camera_topics"):
        out["camera_topics"] = parse_list(given("camera_topics"))
    if given("camera_compressed"):
        out["camera_compressed"] = [
            parse_bool(v, "camera_compressed") for v in parse_list(given("camera_compressed"))
        ]
    for key in ("output_enabled", "auto_activate", "use_sim_time"):
        if given(key):
            out[key] = parse_bool(given(key), key)
    return out
