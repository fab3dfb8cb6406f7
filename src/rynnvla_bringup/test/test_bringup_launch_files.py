"""Static checks of the launch files, with no launch_ros needed: their source is parsed (AST)
and every package / executable, included launch file, launch argument and helper they name is
checked against the packages. A typo in a launch file fails here on any machine."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from rynnvla_bringup import params

BRINGUP = Path(__file__).resolve().parents[1]
LAUNCH_DIR = BRINGUP / "launch"
SRC = BRINGUP.parent
EXPECTED = {"policy.launch.py", "sim.launch.py", "gazebo.launch.py", "record.launch.py"}
# Executables of other ROS packages the launch files start (ros2_control, Gazebo, robot state).
EXTERNAL_EXECUTABLES = {
    ("robot_state_publisher", "robot_state_publisher"),
    ("controller_manager", "ros2_control_node"),
    ("controller_manager", "spawner"),
    ("ros_gz_sim", "create"),
    ("ros_gz_bridge", "parameter_bridge"),
}
EXTERNAL_LAUNCH_FILES = {("ros_gz_sim", "gz_sim.launch.py")}
NODE_ACTIONS = {"Node", "LifecycleNode"}


def launch_files() -> list[Path]:
    return sorted(LAUNCH_DIR.glob("*.launch.py"))


def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and call_name(n) == name]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def declared_arguments(tree: ast.Module) -> dict[str, tuple]:
    """name -> (default, description) from the ARGUMENTS table and literal declarations."""
    out: dict[str, tuple] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "ARGUMENTS" for t in node.targets
        ):
            for name, default, description in ast.literal_eval(node.value):
                out[name] = (default, description)
    for call in calls(tree, "DeclareLaunchArgument"):
        if call.args and isinstance(call.args[0], ast.Constant):
            description = keyword(call, "description")
            out[call.args[0].value] = (
                None,
                description.value if isinstance(description, ast.Constant) else None,
            )
    return out


def used_arguments(tree: ast.Module) -> set[str]:
    """Argument names read through LaunchConfiguration("x") or _arg(context, "x")."""
    names = set()
    for call in calls(tree, "LaunchConfiguration"):
        if call.args and isinstance(call.args[0], ast.Constant):
            names.add(call.args[0].value)
    for call in calls(tree, "_arg"):
        if len(call.args) > 1 and isinstance(call.args[1], ast.Constant):
            names.add(call.args[1].value)
    return names


def resolve(expr: ast.expr | None):
    """A string literal, or `SPEC.field` of a NodeSpec in rynnvla_bringup.params."""
    if isinstance(expr, ast.Constant):
        return expr.value
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        spec = getattr(params, expr.value.id, None)
        assert spec is not None, f"{expr.value.id} is not defined in rynnvla_bringup.params"
        return getattr(spec, expr.attr)
    raise AssertionError(f"cannot check a computed package/executable: {ast.dump(expr)}")


def console_scripts(package: str) -> dict[str, str]:
    """name -> 'module:function' from src/<package>/setup.py."""
    setup = ast.parse((SRC / package / "setup.py").read_text())
    scripts = {}
    for node in ast.walk(setup):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value:
            name, _, target = node.value.partition(" = ")
            if ":" in target:
                scripts[name.strip()] = target.strip()
    return scripts


@pytest.fixture(params=sorted(EXPECTED))
def launch_file(request) -> Path:
    return LAUNCH_DIR / request.param


def test_the_four_launch_files_exist_and_are_installed():
    assert {p.name for p in launch_files()} == EXPECTED
    installed = params.package_share("rynnvla_bringup") / "launch"
    assert {p.name for p in installed.glob("*.launch.py")} >= EXPECTED, (
        "run `make setup`: launch files are data files of rynnvla_bringup"
    )


def test_every_argument_is_documented(launch_file):
    declared = declared_arguments(tree_of(launch_file))
    assert declared, f"{launch_file.name} declares no arguments"
    for name, (_, description) in declared.items():
        assert isinstance(description, str) and len(description) > 10, (
            f"{launch_file.name}: argument {name!r} has no description"
        )


def test_every_argument_read_is_declared(launch_file):
    tree = tree_of(launch_file)
    missing = used_arguments(tree) - set(declared_arguments(tree))
    assert not missing, f"{launch_file.name} reads undeclared launch arguments {missing}"


def test_nodes_name_real_packages_and_executables(launch_file):
    tree = tree_of(launch_file)
    for call in [c for name in NODE_ACTIONS for c in calls(tree, name)]:
        package = resolve(keyword(call, "package"))
        executable = resolve(keyword(call, "executable"))
        if (package, executable) in EXTERNAL_EXECUTABLES:
            continue
        assert (SRC / package / "package.xml").is_file(), (
            f"{launch_file.name}: unknown package {package!r}"
        )
        scripts = console_scripts(package)
        assert executable in scripts, (
            f"{launch_file.name}: {package} has no executable {executable!r} ({sorted(scripts)})"
        )
        module, _, function = scripts[executable].partition(":")
        assert callable(getattr(importlib.import_module(module), function))
        prefix = params.package_share(package).parent.parent
        assert (prefix / "lib" / package / executable).is_file(), (
            f"{executable} is not installed in {prefix}/lib/{package}: run `make setup`"
        )


def test_included_launch_files_exist_and_get_declared_arguments(launch_file):
    tree = tree_of(launch_file)
    for call in calls(tree, "IncludeLaunchDescription"):
        names = [
            n.value
            for n in ast.walk(call.args[0])
            if isinstance(n, ast.Constant) and str(n.value).endswith(".launch.py")
        ]
        assert len(names) == 1, f"{launch_file.name}: include without a launch file name"
        packages = [
            c.args[0].value
            for c in calls(
                ast.Module(body=[ast.Expr(call.args[0])], type_ignores=[]), "FindPackageShare"
            )
        ]
        if packages:
            assert (packages[0], names[0]) in EXTERNAL_LAUNCH_FILES, (packages, names)
            continue
        target = LAUNCH_DIR / names[0]
        assert target.is_file(), f"{launch_file.name} includes a missing {names[0]}"
        given = keyword(call, "launch_arguments")
        assert isinstance(given, ast.Call) and isinstance(given.func.value, ast.Dict)
        keys = {k.value for k in given.func.value.keys}
        unknown = keys - set(declared_arguments(tree_of(target)))
        assert not unknown, f"{launch_file.name} passes {unknown} that {names[0]} does not declare"


def test_helpers_imported_from_rynnvla_bringup_exist(launch_file):
    for node in ast.walk(tree_of(launch_file)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rynnvla_"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


def test_parameter_files_of_the_launched_nodes_exist():
    for robot in params.robot_profiles():
        for path in params.policy_layers(robot).files:
            assert path.is_file()
    for path in params.sim_layers().files:
        assert path.is_file()
    assert params.controllers_path().is_file()


def test_required_arguments():
    policy = declared_arguments(tree_of(LAUNCH_DIR / "policy.launch.py"))
    sim = declared_arguments(tree_of(LAUNCH_DIR / "sim.launch.py"))
    assert policy["checkpoint"][0] is None and sim["checkpoint"][0] is None
    assert policy["robot"][0] in params.robot_profiles()
    assert sim["robot"][0] == "sim_arm"
    gazebo = declared_arguments(tree_of(LAUNCH_DIR / "gazebo.launch.py"))
    assert gazebo["hardware"][0] == "gazebo"
