"""Headless-friendly offscreen rendering of MuJoCo cameras.

MuJoCo picks its OpenGL backend from the MUJOCO_GL environment variable *when `mujoco` is first
imported*. This module is imported by `rynnvla_sim/__init__.py`, before any other module
imports mujoco; `configure_gl_backend()` defaults it to `egl` on Linux machines without a display, which works on CPU-only machines
through Mesa's software rasteriser (llvmpipe). A user's own MUJOCO_GL is always kept.

Cost on Mesa is dominated by per-frame fixed work (scene upload, glReadPixels), not pixels, so:
one `mujoco.Renderer` (one GL context) serves every camera of a model and is reused for the
whole run; shadows, reflections, skybox, fog and haze are off; the offscreen buffer is the
image size (set in the MJCF); `LP_NUM_THREADS` defaults to 0 so llvmpipe rasterises on the
calling thread (measured fastest for tiny frames: no thread hand-off per frame).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

GL_HELP = (
    "MuJoCo could not create an OpenGL context (MUJOCO_GL={backend!r}): {error}\n"
    "To render without a display on Linux use MUJOCO_GL=egl with Mesa's EGL installed "
    "(Debian/Ubuntu: apt install libegl1 libegl-mesa0 libgl1-mesa-dri; CPU-only machines "
    "render through Mesa's llvmpipe), or MUJOCO_GL=osmesa with libosmesa6. With a desktop "
    "session use MUJOCO_GL=glfw. MUJOCO_GL must be set before mujoco is first imported "
    "(import rynnvla_sim first, or export it). Physics, the expert and success checks work "
    "without rendering."
)


class GLBackendError(RuntimeError):
    """No working OpenGL backend for offscreen rendering."""


def configure_gl_backend() -> bool:
    """Default MUJOCO_GL to `egl` on displayless Linux. True if we chose it (not the user).

    Must run before the first `import mujoco` of the process to have an effect.
    """
    # Tiny frames: rasterising on the calling thread beats llvmpipe's worker threads.
    os.environ.setdefault("LP_NUM_THREADS", "0")
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        if "MUJOCO_GL" not in os.environ:
            os.environ["MUJOCO_GL"] = "egl"
            return True
    return False


def _import_mujoco():
    """Import mujoco; a broken GL backend makes that import itself fail.

    A backend the user chose is an error right away. Our own default degrades to physics
    only (MUJOCO_GL=disable): everything but `render` works and `render` raises the reason.
    """
    global _GL_IMPORT_ERROR
    we_chose = configure_gl_backend()
    try:
        import mujoco
    except Exception as error:  # ImportError, AttributeError from PyOpenGL, RuntimeError ...
        backend = os.environ.get("MUJOCO_GL", "")
        if not we_chose:
            raise GLBackendError(GL_HELP.format(backend=backend, error=error)) from error
        for name in [m for m in sys.modules if m == "mujoco" or m.startswith("mujoco.")]:
            del sys.modules[name]
        os.environ["MUJOCO_GL"] = "disable"
        _GL_IMPORT_ERROR = GL_HELP.format(backend=backend, error=error)
        import mujoco
    return mujoco


_GL_IMPORT_ERROR: str | None = None
mujoco = _import_mujoco()

_DISABLED_FLAGS = (
    mujoco.mjtRndFlag.mjRND_SHADOW,
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
    mujoco.mjtRndFlag.mjRND_FOG,
    mujoco.mjtRndFlag.mjRND_HAZE,
)


class CameraRenderer:
    """One reusable offscreen renderer for all cameras of a model, at one image size."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int) -> None:
        if _GL_IMPORT_ERROR is not None:
            raise GLBackendError(_GL_IMPORT_ERROR)
        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as error:  # GL errors surface as ImportError, RuntimeError, ...
            backend = os.environ.get("MUJOCO_GL", "")
            raise GLBackendError(GL_HELP.format(backend=backend, error=error)) from error
        for flag in _DISABLED_FLAGS:
            self._renderer.scene.flags[flag] = False
        self._model = model
        self.width, self.height = width, height
        self.frames_rendered = 0
        self.seconds_rendering = 0.0

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """RGB image of `camera`: (H, W, 3) uint8."""
        if mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"unknown camera {camera!r}")
        start = time.perf_counter()
        self._renderer.update_scene(data, camera=camera)
        image = self._renderer.render()  # (H, W, 3) uint8
        self.seconds_rendering += time.perf_counter() - start
        self.frames_rendered += 1
        return image

    @property
    def mean_ms(self) -> float:
        """Mean wall time per rendered frame so far (ms)."""
        return 1e3 * self.seconds_rendering / max(self.frames_rendered, 1)

    def close(self) -> None:
        self._renderer.close()
