import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rynnvla_bringup"


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries for every file under `folder` (the shipped checkpoint), by directory."""
    entries = []
    for root, _, files in os.walk(folder):
        if files:
            entries.append((f"share/{PACKAGE}/{root}", [os.path.join(root, f) for f in files]))
    return sorted(entries)


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/robots", glob("config/robots/*.yaml")),
        (f"share/{PACKAGE}/urdf", glob("urdf/*")),
        *tree("checkpoints"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="rynnvla-ros maintainers",
    maintainer_email="maintainers@rynnvla-ros.dev",
    description="Launch files, robot profiles, composed runner and demo.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "rynnvla-run = rynnvla_bringup.composed:main",
            "rynnvla-demo = rynnvla_bringup.demo:main",
        ],
    },
)
