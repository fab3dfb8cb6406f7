from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rynnvla_training"

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
    description="Rosbag converter, dataset tools, trainers and closed-loop evaluation.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "rynnvla-convert = rynnvla_training.convert.cli:main",
            "rynnvla-dataset = rynnvla_training.dataset.cli:main",
            "rynnvla-train = rynnvla_training.train.cli:main",
            "rynnvla-eval = rynnvla_training.evaluate.cli:main",
        ],
    },
)
