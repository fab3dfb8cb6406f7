"""One camera's frames -> video file + image histogram, in a background thread.

The bag-reading thread only hands frames over through a bounded queue (memory: ``depth``
frames per camera). PyAV releases the GIL inside FFmpeg (colour conversion, encoding), so the
cameras and the reader really run in parallel. Frames are encoded in the order given, so the
output does not depend on thread timing.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from .stats import ImageHistogram
from .video import VideoEncoder

_DONE = object()


class CameraSink:
    """``add(rgb)`` frames, then ``close()``; errors of the thread are raised by either."""

    def __init__(self, encoder: VideoEncoder, depth: int = 8):
        self.encoder = encoder
        self.histogram = ImageHistogram()
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"encode {encoder.path.name}")
        self._thread.daemon = True
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            rgb = self._queue.get()
            if rgb is _DONE:
                break
            if self._error is not None:
                continue  # keep draining so that add() never blocks forever
            try:
                self.encoder.add(rgb)
                self.histogram.update(rgb)
            except BaseException as exc:  # re-raised in the calling thread
                self._error = exc
        try:
            self.encoder.close()
        except BaseException as exc:
            self._error = self._error or exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def add(self, rgb: np.ndarray) -> None:
        self._raise()
        self._queue.put(rgb)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_DONE)
            self._thread.join()
        self._raise()

    @property
    def size(self) -> tuple[int, int] | None:
        return self.encoder.size
