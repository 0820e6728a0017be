"""Encoding on its own thread: every write in order, errors raised in the stream's thread, nothing after a cancel."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from dicface.pipeline.runtime.writer import BackgroundWriter
from dicface.pipeline.types import Frame


class _Recorder:
    """A sink that records what it was given, slowly, on whichever thread calls it."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.threads: set[str] = set()
        self.fail_at = fail_at
        self.retimed_frames, self.dropped_streams = 0, []

    def write(self, frame: Frame, image: np.ndarray | None = None) -> None:
        time.sleep(0.002)
        if frame.index == self.fail_at:
            raise OSError(28, "No space left on device")
        self.calls.append(("frame", frame.index))
        self.threads.add(threading.current_thread().name)

    def write_packets(self, packets: list) -> None:
        self.calls.append(("packets", tuple(packets)))


def _frame(i: int) -> Frame:
    return Frame(i, i, Fraction(1, 25), np.zeros((2, 2, 3), np.uint8))


def test_writes_are_done_in_order_on_the_writer_thread() -> None:
    sink = _Recorder()
    writer = BackgroundWriter(sink, depth=2)
    for i in range(20):
        writer.write(_frame(i))
        writer.write_packets([f"audio{i}"])
        writer.write_packets([])  # nothing to do: not queued
    writer.finish()
    assert sink.calls == [c for i in range(20) for c in (("frame", i), ("packets", (f"audio{i}",)))]
    assert sink.threads == {"dicface-encode"} and writer.busy_seconds > 0


def test_an_error_of_the_writer_is_raised_in_the_stream_and_nothing_after_it_is_written() -> None:
    sink = _Recorder(fail_at=3)
    writer = BackgroundWriter(sink, depth=2)
    with pytest.raises(OSError, match="No space left"):
        for i in range(50):
            writer.write(_frame(i))
        writer.finish()
    writer.cancel()
    assert [c[1] for c in sink.calls] == [0, 1, 2]


def test_cancel_drops_what_is_pending() -> None:
    sink = _Recorder()
    writer = BackgroundWriter(sink, depth=50)
    for i in range(50):
        writer.write(_frame(i))
    writer.cancel()
    assert len(sink.calls) < 50
    writer.cancel()  # twice: nothing happens
