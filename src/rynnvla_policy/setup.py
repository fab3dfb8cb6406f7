from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rynnvla_policy"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="rynnvla-ros maintainers",
    maintainer_email="maintainers@rynnvla-ros.dev",
    description="RynnVLA-001 model core and ROS 2 policy node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "policy_node = rynnvla_policy.node.main:main",
        ],
    },
)
