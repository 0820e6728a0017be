"""Decoding on a thread of its own, a few frames ahead, so it overlaps the stream's detection, tracking and DIC.

PyAV and FFmpeg release the GIL while they decode and convert, so the next frame is decoded while the stream's
thread works on this one (and the writer's thread encodes an earlier one). Frames come out in the source's order,
each with the packets of the copied streams (audio, subtitles) that were demuxed before it, so the sink receives
exactly what a sequential read hands it. An error of the worker (a damaged file ...) is raised in the stream's
thread at the frame where it happened.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import av

from dicface.pipeline.source import StreamInfo
from dicface.pipeline.types import Frame


class Source(Protocol):
    """What a stream is read from: a file, a folder of frames, a live stream, or one of these read ahead."""

    info: StreamInfo
    first_output: int  # frames before this index only warm the tracker up (a segment of a split file)
    stop_output: int | None  # frames from this index on only give the fusion its lookahead (None: no such frames)
    corrupt_packets: int
    stopped_early: str | None

    def __iter__(self) -> Iterator[Frame]: ...

    def take_packets(self) -> list[av.Packet]: ...


_END = object()
READ_AHEAD = 4  # frames decoded ahead of the stream (each held until taken)


class ReadAhead:
    """``source`` decoded by a worker thread at most ``depth`` frames ahead. Iterate it once, as the source; leave
    the ``with`` block (or ``close``) when done: that stops a worker still reading after an error elsewhere.
    ``busy_seconds``: the worker's time spent decoding."""

    def __init__(self, source: Source, depth: int = READ_AHEAD) -> None:
        self.source = source
        self.info, self.first_output, self.stop_output = source.info, source.first_output, source.stop_output
        self._items: queue.Queue[tuple[object, list[av.Packet]]] = queue.Queue(depth)
        self._packets: list[av.Packet] = []
        self._stop = threading.Event()
        self.busy_seconds = 0.0
        self._thread = threading.Thread(target=self._work, name="dicface-decode", daemon=True)
        self._thread.start()

    @property
    def corrupt_packets(self) -> int:
        return self.source.corrupt_packets

    @property
    def stopped_early(self) -> str | None:
        return self.source.stopped_early

    def take_packets(self) -> list[av.Packet]:
        """Packets of the copied streams demuxed before the frames handed out so far (and after the last one, once
        the source is exhausted)."""
        packets, self._packets = self._packets, []
        return packets

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item, packets = self._items.get()
            self._packets += packets
            if isinstance(item, BaseException):
                raise item
            if item is _END:
                return
            assert isinstance(item, Frame)
            yield item

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a worker waiting for room
            with contextlib.suppress(queue.Empty):
                self._items.get(timeout=0.05)
        self._thread.join()

    def _put(self, item: object, packets: list[av.Packet]) -> bool:
        while not self._stop.is_set():
            try:
                self._items.put((item, packets), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            frames, start = iter(self.source), time.perf_counter()
            for frame in frames:
                self.busy_seconds += time.perf_counter() - start
                if not self._put(frame, self.source.take_packets()):
                    return
                start = time.perf_counter()
            self._put(_END, self.source.take_packets())
        except BaseException as exc:  # noqa: BLE001 -- handed to the stream's thread, which raises it
            self._put(exc, self.source.take_packets())
