"""Live streams (``dicface stream``): a camera that may drop, a pipeline that must not fall behind, outputs that
stay playable.

- ``LiveSource`` decodes in a background thread into a short queue. When the pipeline is slower than the camera,
  the oldest waiting frames are dropped (counted), so latency stays bounded instead of growing without end.
- When the source ends or fails it is reopened with exponential backoff; frames are renumbered and their
  timestamps continue from the last frame, so the output's timeline is monotonic across reconnects.
- ``listen``: wait for an encoder or camera to push to us (RTSP ANNOUNCE/RECORD) instead of pulling from a server.
- ``SegmentSink`` writes a folder of finished files, one per ``seconds`` of stream time, each written atomically:
  a long-running camera never leaves a half-written file, and stopping finalises the current segment.
- A stop event (set on Ctrl-C / SIGTERM by the CLI) ends the stream cleanly: queued windows are finished and the
  output is closed properly.

Audio is not carried on live streams (its timeline cannot be kept continuous across reconnects); files keep it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dicface.configs.video import EncodeOptions
from dicface.models.errors import InputError
from dicface.pipeline.sink import VideoSink
from dicface.pipeline.source import STREAM_TIMEOUTS, FileSource, StreamInfo
from dicface.pipeline.types import Frame


@dataclass(frozen=True)
class LiveOptions:
    listen: bool = False  # wait for a pusher instead of pulling from a server
    max_pending: int = 8  # decoded frames waiting for the pipeline; beyond this the oldest are dropped
    reconnect_timeout: float = 30.0  # seconds without a connection before the stream is given up
    backoff: tuple[float, float] = (0.5, 8.0)  # first and longest wait between attempts, doubling

    def __post_init__(self) -> None:
        if self.max_pending < 1 or self.reconnect_timeout < 0 or not 0 < self.backoff[0] <= self.backoff[1]:
            raise InputError(f"invalid live options: {self}")


class LiveSource:
    """Frames of a live stream URL; see the module notes. Iterate once; ``close()`` stops the reader."""

    def __init__(self, url: str, options: LiveOptions = LiveOptions(), stop: threading.Event | None = None) -> None:
        self.url, self.options = url, options
        self.stop = stop or threading.Event()
        self.first_output, self.stop_output = 0, None
        self.corrupt_packets = 0
        self.dropped = 0
        self.reconnects = 0
        self.stopped_early: str | None = None
        self.copy_streams: list = []  # live outputs carry no audio (see the module notes)
        self._queue: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._finished = False
        first = self._connect()
        if first is None:
            raise InputError(f"{url}: cannot open the stream within {options.reconnect_timeout:g} s")
        self.info: StreamInfo = replace(first.info, frame_count=None, has_audio=False)
        self._reader = threading.Thread(target=self._read, args=(first,), name="live-source", daemon=True)
        self._reader.start()

    def _open(self) -> FileSource:
        if not self.options.listen:
            return FileSource(self.url)
        # FFmpeg's "wait forever" (listen_timeout -1) fails at once here (ERANGE): wait a bounded time instead.
        wait = max(1, round(self.options.reconnect_timeout))
        return FileSource(self.url, stream_options={"rtsp_flags": "listen", "listen_timeout": str(wait)},
                          timeouts=(wait + 5.0, STREAM_TIMEOUTS[1]))

    def _connect(self) -> FileSource | None:
        """Open the stream, retrying with backoff until ``reconnect_timeout``; None if stopped or given up."""
        deadline = time.monotonic() + self.options.reconnect_timeout
        wait, longest = self.options.backoff
        while not self.stop.is_set():
            try:
                return self._open()
            except InputError:
                if time.monotonic() + wait > deadline:
                    return None
                self.stop.wait(wait)
                wait = min(2 * wait, longest)
        return None

    def _read(self, source: FileSource) -> None:
        step = 1 / self.info.fps
        next_time = 0.0  # stream time (s) of the next frame of the output's timeline
        try:
            while True:
                start: float | None = None
                try:
                    for frame in source:
                        if self.stop.is_set():
                            return
                        seconds = float(frame.pts * frame.time_base) if frame.pts is not None else None
                        if start is None:
                            start = (seconds if seconds is not None else 0.0) - next_time
                        at = seconds - start if seconds is not None else next_time
                        at = max(at, next_time - float(step) * 0.5)  # a camera's broken clock: keep time moving
                        next_time = at + float(step)
                        self._push(replace(frame, pts=round(at / self.info.time_base), time_base=self.info.time_base))
                except (InputError, av.FFmpegError, OSError):
                    pass  # a dropped connection: reconnect below
                finally:
                    self.corrupt_packets += source.corrupt_packets
                    source.close()
                if self.stop.is_set():
                    return
                reopened = self._connect()
                if reopened is None:
                    if not self.stop.is_set():
                        self.stopped_early = f"the stream ended and did not come back within " \
                                             f"{self.options.reconnect_timeout:g} s"
                    return
                self.reconnects += 1
                source = reopened
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _push(self, frame: Frame) -> None:
        with self._cond:
            if len(self._queue) >= self.options.max_pending:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(frame)
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while not self.stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._finished or self.stop.is_set(), timeout=0.5)
                if not self._queue:
                    if self._finished:
                        return
                    continue
                frame = self._queue.popleft()
            yield replace(frame, index=index)
            index += 1

    def take_packets(self) -> list[av.Packet]:
        return []

    def close(self) -> None:
        self.stop.set()
        self._reader.join(timeout=15)

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SegmentSink:
    """A folder of video files, a new one every ``seconds`` of stream time (``<stem>_000000.mp4``, ...), each
    written atomically. Same interface as ``VideoSink``."""

    def __init__(self, folder: Path, info: StreamInfo, options: EncodeOptions = EncodeOptions(),
                 seconds: float = 60.0, stem: str = "segment") -> None:
        if seconds <= 0:
            raise InputError(f"segment length must be positive, got {seconds}")
        self.folder, self.info, self.options, self.seconds, self.stem = folder, info, options, seconds, stem
        self.written: list[Path] = []
        self._retimed = 0  # in the finished segments
        self.dropped_streams: list[str] = []  # no stream is copied into live outputs
        self._sink: VideoSink | None = None
        self._start: Fraction | None = None  # stream time (s) of the current segment's first frame

    @property
    def retimed_frames(self) -> int:
        """Frames moved forward in time, over all segments (``VideoSink.retimed_frames``)."""
        return self._retimed + (self._sink.retimed_frames if self._sink is not None else 0)

    def write_packets(self, packets: list[av.Packet]) -> None:
        """Live streams carry no audio (see the module notes)."""

    def write(self, frame: Frame, image: np.ndarray | None = None) -> None:
        at = Fraction(frame.pts or 0) * frame.time_base
        if self._sink is None or self._start is None or at - self._start >= self.seconds:
            self.close()
            path = self.folder / f"{self.stem}_{len(self.written):06d}.mp4"
            self._sink, self._start = VideoSink(path, self.info, (), self.options), at
            self.written.append(path)
        offset = round(self._start / frame.time_base)  # each segment's timeline starts at 0
        self._sink.write(replace(frame, pts=(frame.pts or 0) - offset), image)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._retimed += self._sink.retimed_frames
            self._sink = None

    def abort(self) -> None:
        """The segment being written is dropped; finished segments stay."""
        if self._sink is not None:
            self._sink.abort()
            self.written.pop()
            self._sink = None

    def __enter__(self) -> SegmentSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()
