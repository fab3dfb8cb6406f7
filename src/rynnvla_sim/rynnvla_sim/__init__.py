"""MuJoCo simulated SO-100-style arm: scenes, tasks, scripted expert, ROS 2 sim node, demo recorder and human-hand video generator.

Importing the package picks MuJoCo's OpenGL backend first (MUJOCO_GL, see `rendering`), so
every submodule can `import mujoco` and rendering works headless.
"""

from rynnvla_sim import rendering as _rendering  # noqa: F401  (must run before mujoco's import)
