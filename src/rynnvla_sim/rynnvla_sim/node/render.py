"""Camera rendering on its own thread, so rendering never holds up physics or joint states.

The physics thread hands over a snapshot of the scene (``qpos`` at the capture instant, a few
hundred bytes); this thread owns its own GL context (EGL contexts belong to the thread that made
them current) and its own ``MjData``, recomputes the kinematics of the snapshot and renders
every camera. Images are therefore exactly the scene at the capture time, whatever the lag.
No rclpy: frames go to a ``publish(stamp_ns, camera, rgb)`` callback.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

import numpy as np

from rynnvla_sim import rendering  # sets MUJOCO_GL before mujoco is imported

mujoco = rendering.mujoco

PublishFrame = Callable[[int, str, np.ndarray], None]
_STOP = object()


class RenderWorker:
    """Renders queued scene snapshots on a dedicated thread."""

    def __init__(
        self,
        model,
        width: int,
        height: int,
        cameras: Sequence[str],
        publish: PublishFrame,
        queue_size: int = 2,
        on_error: Callable[[BaseException], None] | None = None,
    ):
        self._model = model
        self._size = (int(width), int(height))
        self._cameras = tuple(cameras)
        self._publish = publish
        self._on_error = on_error
        self._jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sim_render", daemon=True)
        self.frames_rendered = 0
        self.frames_dropped = 0
        self.render_seconds = 0.0

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the thread; raises (e.g. GLBackendError) if no renderer can be created."""
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"the camera renderer did not start within {timeout_s} s")
        if self._startup_error is not None:
            raise self._startup_error

    def submit(self, stamp_ns: int, qpos: np.ndarray, block: bool) -> bool:
        """Queue a snapshot; if the queue is full, wait (``block``) or drop it (returns False)."""
        try:
            self._jobs.put((stamp_ns, qpos), block=block, timeout=5.0 if block else None)
            return True
        except queue.Full:
            self.frames_dropped += len(self._cameras)
            return False

    def stop(self, timeout_s: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        while True:  # make room for the stop marker: pending frames are not needed any more
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(_STOP)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            renderer = rendering.CameraRenderer(self._model, *self._size)
            data = mujoco.MjData(self._model)
        except BaseException as exc:  # reported to start(), which raises it in the caller
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while (job := self._jobs.get()) is not _STOP:
                stamp_ns, qpos = job
                self._render(renderer, data, stamp_ns, qpos)
        except BaseException as exc:  # a dead render thread must be visible, not silent
            if self._on_error is not None:
                self._on_error(exc)
        finally:
            renderer.close()

    def _render(self, renderer, data, stamp_ns: int, qpos: np.ndarray) -> None:
        data.qpos[:] = qpos
        # positions only: body/geom/camera poses; no dynamics or collisions are needed
        mujoco.mj_kinematics(self._model, data)
        mujoco.mj_comPos(self._model, data)
        mujoco.mj_camlight(self._model, data)
        for camera in self._cameras:
            image = renderer.render(data, camera)  # (H, W, 3) uint8
            self._publish(stamp_ns, camera, image)
            self.frames_rendered += 1
        self.render_seconds = renderer.seconds_rendering
