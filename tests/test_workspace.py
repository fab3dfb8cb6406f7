"""The workspace is a real colcon workspace: manifests parse, every console script resolves."""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
PYTHON_PACKAGES = ["rynnvla_policy", "rynnvla_sim", "rynnvla_training", "rynnvla_bringup"]
ALL_PACKAGES = ["rynnvla_msgs", *PYTHON_PACKAGES]


@pytest.mark.parametrize("name", ALL_PACKAGES)
def test_manifest_parses_and_is_format_3(name):
    package = parse_package(str(ROOT / "src" / name / "package.xml"))
    package.validate()
    assert package.name == name
    assert package.package_format == 3
    build_type = package.get_build_type()
    assert build_type == ("ament_cmake" if name == "rynnvla_msgs" else "ament_python")


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_ament_python_skeleton(name):
    package_dir = ROOT / "src" / name
    assert (package_dir / "resource" / name).is_file()
    assert (package_dir / name / "__init__.py").is_file()
    assert f"$base/lib/{name}" in (package_dir / "setup.cfg").read_text()


def _console_scripts(setup_py: Path) -> list[str]:
    """The console_scripts entries of a setup.py, read without executing it."""
    tree = ast.parse(setup_py.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return [elt.value for elt in value.elts]
    return []


SCRIPTS = [
    (name, entry)
    for name in PYTHON_PACKAGES
    for entry in _console_scripts(ROOT / "src" / name / "setup.py")
]


@pytest.mark.parametrize(
    ("package", "entry"), SCRIPTS, ids=[e.split("=")[0].strip() for _, e in SCRIPTS]
)
def test_console_script_resolves(package, entry):
    script, target = (part.strip() for part in entry.split("=", 1))
    module_name, function_name = target.split(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function_name)), f"{script}: {target} is not callable"
    installed = ROOT / "install" / package / "lib" / package / script
    assert installed.exists(), f"{script} not installed at {installed}: run `make setup`"
    assert os.access(installed, os.X_OK)


def test_interface_package_is_built():
    from rynnvla_msgs.msg import ActionChunk, PolicyStatus
    from rynnvla_msgs.srv import SetInstruction

    assert "positions" in ActionChunk.get_fields_and_field_types()
    assert PolicyStatus.CONTROL_STALE == 3
    assert set(SetInstruction.Request.get_fields_and_field_types()) == {
        "instruction",
        "reset_history",
    }
