"""Encoding on a thread of its own, so it overlaps the next frames' decoding, detection and DIC.

PyAV and FFmpeg release the GIL while they convert and encode, so a frame can be encoded while the stream's own
thread detects faces in the next one. One worker does every write of a sink (frames and the copied audio and
subtitle packets) in the order they were handed over, so the file is the one a sequential run writes. At most
``depth`` writes wait; an error of the worker (a full disk ...) is raised in the stream's thread at its next call
or at ``finish``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import av
import numpy as np

from dicface.pipeline.types import Frame


class Sink(Protocol):
    retimed_frames: int
    dropped_streams: list[str]

    def write(self, frame: Frame, image: np.ndarray | None = None) -> None: ...

    def write_packets(self, packets: list[av.Packet]) -> None: ...


_STOP = None
WRITE_QUEUE = 4  # writes that may wait for the worker (each holds a frame)


class BackgroundWriter:
    """A sink's writes, done in order by one worker thread. Call ``finish`` (all written) or ``cancel`` (the rest
    dropped) before using the sink again; ``busy_seconds`` is the worker's time spent writing."""

    def __init__(self, sink: Sink, depth: int = WRITE_QUEUE) -> None:
        self.sink = sink
        self.busy_seconds = 0.0
        self._tasks: queue.Queue[tuple[Callable[..., None], tuple[object, ...]] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._failed = self._cancelled = False
        self._thread = threading.Thread(target=self._work, name="dicface-encode", daemon=True)
        self._thread.start()

    def write(self, frame: Frame, image: np.ndarray | None = None) -> None:
        self._put(self.sink.write, frame, image)

    def write_packets(self, packets: list[av.Packet]) -> None:
        if packets:
            self._put(self.sink.write_packets, packets)

    def finish(self) -> None:
        """Wait until every write is done; raise the worker's error, if any."""
        self._stop()
        self._raise()

    def cancel(self) -> None:
        """Drop the writes not done yet and stop the worker (after an error elsewhere)."""
        self._cancelled = True
        self._stop()

    def _put(self, fn: Callable[..., None], *args: object) -> None:
        self._raise()
        self._tasks.put((fn, args))

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._tasks.put(_STOP)
            self._thread.join()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not _STOP:
            if not (self._failed or self._cancelled):  # after an error: keep taking tasks, never block the stream
                self._do(*task)
            del task  # no frame is held while waiting for the next write

    def _do(self, fn: Callable[..., None], args: tuple[object, ...]) -> None:
        start = time.perf_counter()
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the stream's thread, which raises it
            self._error, self._failed = exc, True
        self.busy_seconds += time.perf_counter() - start
