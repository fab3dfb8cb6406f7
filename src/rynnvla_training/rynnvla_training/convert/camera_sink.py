"""One camera's frames -> decoded, video-encoded, histogrammed, in a background thread.

The bag-reading thread only hands over (key, decode) jobs through a bounded queue (memory:
``depth`` frames per camera). Decoding (Pillow's JPEG decoder) and FFmpeg (colour conversion,
encoding) release the GIL, so the cameras and the reader really run in parallel. Frames are
processed in the order given, so the output does not depend on thread timing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from .stats import ImageHistogram
from .video import VideoEncoder

_DONE = object()


class CameraSink:
    """``add(key, decode)`` per frame, then ``close()``; thread errors are raised by either.

    ``decode()`` returns the frame (H, W, 3) uint8; it is called once per distinct ``key``
    (a camera frame held over several dataset frames is decoded once).
    """

    def __init__(self, encoder: VideoEncoder, depth: int = 8):
        self.encoder = encoder
        self.histogram = ImageHistogram()
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._last: tuple[object, np.ndarray] | None = None
        self._thread = threading.Thread(target=self._run, name=f"encode {encoder.path.name}")
        self._thread.daemon = True
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _DONE:
                break
            if self._error is not None:
                continue  # keep draining so that add() never blocks forever
            try:
                key, decode = job
                if self._last is None or self._last[0] != key:
                    self._last = (key, decode())
                rgb = self._last[1]
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

    def add(self, key: object, decode: Callable[[], np.ndarray]) -> None:
        self._raise()
        self._queue.put((key, decode))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_DONE)
            self._thread.join()
        self._raise()

    @property
    def size(self) -> tuple[int, int] | None:
        return self.encoder.size
