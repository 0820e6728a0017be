"""Decoding on its own thread: the frames and copied packets of a sequential read, errors at their frame, a prompt
stop."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dicface.pipeline.examples import face_clip_frames, write_clip
from dicface.pipeline.runtime.reader import ReadAhead
from dicface.pipeline.source import FileSource, StreamInfo
from dicface.pipeline.types import Frame


def _reads(source: object) -> list[tuple[int, int]]:
    """(frame index, packets handed out with it) for a whole read, and the packets after the last frame."""
    out = []
    for frame in source:
        out.append((frame.index, len(source.take_packets())))
    return [*out, (-1, len(source.take_packets()))]


def test_the_frames_and_packets_of_a_sequential_read(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_clip(clip, face_clip_frames(12, 160, 96, (24,))[0], audio=True)
    with FileSource(clip) as source:
        sequential = _reads(source)
    with FileSource(clip) as source, ReadAhead(source, depth=2) as ahead:
        threaded = _reads(ahead)
        assert ahead.busy_seconds > 0 and ahead.corrupt_packets == 0 and ahead.stopped_early is None
    assert threaded == sequential and sum(n for _, n in sequential) > 0


class _Source:
    """Frames 0, 1, ... made slowly; fails at ``fail_at``."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.info = StreamInfo(2, 2, Fraction(25), Fraction(1, 25), 0, count, has_audio=False)
        self.first_output, self.stop_output, self.corrupt_packets, self.stopped_early = 0, None, 0, None
        self.count, self.fail_at, self.made = count, fail_at, 0

    def __iter__(self):
        for i in range(self.count):
            if i == self.fail_at:
                raise OSError(5, "Input/output error")
            time.sleep(0.001)
            self.made += 1
            yield Frame(i, i, Fraction(1, 25), np.zeros((2, 2, 3), np.uint8))

    def take_packets(self) -> list:
        return []


def test_an_error_of_the_decoder_is_raised_at_its_frame() -> None:
    seen = []
    with ReadAhead(_Source(10, fail_at=6)) as ahead, pytest.raises(OSError, match="Input/output"):
        for frame in ahead:
            seen.append(frame.index)
    assert seen == [0, 1, 2, 3, 4, 5]


def test_leaving_early_stops_the_worker() -> None:
    source = _Source(10_000)
    with ReadAhead(source, depth=3) as ahead:
        next(iter(ahead))
    assert not any(t.name == "dicface-decode" for t in threading.enumerate())
    assert source.made < 10
