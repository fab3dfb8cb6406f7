from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rynnvla_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["assets/*.xml", "assets/*.png"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="rynnvla-ros maintainers",
    maintainer_email="maintainers@rynnvla-ros.dev",
    description="MuJoCo simulated arm, scripted expert, demo recorder and human-hand videos.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_node = rynnvla_sim.node.main:main",
            "rynnvla-sim-collect = rynnvla_sim.collect:main",
            "rynnvla-sim-humanvideos = rynnvla_sim.human_videos:main",
        ],
    },
)
