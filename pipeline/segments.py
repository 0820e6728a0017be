"""Long files in parallel: split at keyframes, enhance the parts at once, join them without re-encoding.

- ``probe_timeline`` reads the video packets (no decoding): every frame's pts and which are keyframes.
- ``plan_segments`` cuts the file into parts of about equal length. Part i > 0 starts decoding at a keyframe;
  its first ``overlap`` frames only warm the tracker up (detected and tracked, not written), so that its faces are
  already tracked, smoothed and confirmed at its first output frame, as they would be in one continuous run.
- Each part is encoded on its own (an IDR frame first) into an MP4 beside the output; ``join_videos`` remuxes the
  parts' packets and the source's audio into the output. Every frame keeps its own timestamp, so frame count and
  timestamps equal the input's.
- The parts' tracks files are joined by ``pipeline.tracks_file.join_tracks``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from dicface.models.atomic import atomic_output
from dicface.models.errors import DicfaceError
from dicface.pipeline.sink import container_format, copy_streams
from dicface.pipeline.source import COPIED_TYPES, Span, unkept_streams

OVERLAP_FRAMES = 24  # warm-up frames before each boundary (3 DIC windows of 8; about 1 s)
SPLITTABLE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")  # outputs whose parts can be joined losslessly


@dataclass(frozen=True)
class Timeline:
    """A video stream's frames: ``pts`` of every frame in display order, ``keyframes`` the pts of the packets a
    decoder can start at (sorted), both in ``time_base``."""

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    time_base: Fraction

    @property
    def seconds(self) -> float:
        return float((self.pts[-1] - self.pts[0]) * self.time_base) if self.pts else 0.0


def probe_timeline(path: Path) -> Timeline | None:
    """Read the video packets of ``path`` (no decoding). None when some packet has no pts, or two share one: such
    a file cannot be cut by timestamp."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        pts, keyframes = [], []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
        if len(set(pts)) != len(pts):
            return None
        return Timeline(tuple(sorted(pts)), tuple(sorted(keyframes)), Fraction(stream.time_base))


@dataclass(frozen=True)
class Segment:
    """Output frames ``start`` to ``stop - 1`` (display order); decoding starts ``warmup`` frames earlier, at a
    keyframe."""

    start: int
    stop: int
    warmup: int
    span: Span


def plan_segments(timeline: Timeline, parts: int, overlap: int = OVERLAP_FRAMES, tail: int = 0) -> list[Segment]:
    """Up to ``parts`` segments of about equal frame counts covering every frame once. A segment after the first
    starts decoding at a keyframe and writes from ``overlap`` frames later; a segment before the last decodes
    ``tail`` frames past its end (the temporal fusion's lookahead), which it does not write. A boundary is left
    out where no keyframe lies within half a part of where it should be, or where a part would be shorter than the
    overlap (a short file, or one with a single keyframe, gives one segment)."""
    count = len(timeline.pts)
    index_of = {p: i for i, p in enumerate(timeline.pts)}
    # A part can start `overlap` frames after any keyframe: its warm-up decodes from there.
    candidates = sorted({index_of[k] + overlap for k in timeline.keyframes if k in index_of})
    starts = [0]
    for part in range(1, parts):
        ideal = part * count / parts
        at = bisect_left(candidates, ideal)
        start = min(candidates[max(at - 1, 0) : at + 1], key=lambda c: abs(c - ideal), default=None)
        if (start is not None and abs(start - ideal) <= count / (2 * parts)
                and start - starts[-1] >= overlap and count - start >= overlap):
            starts.append(start)
    segments = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else count
        warmup = 0 if i == 0 else overlap
        begin = start - warmup
        end = min(stop + tail, count)
        span = Span(seek_pts=timeline.pts[begin], first_index=begin, first_output=start,
                    stop_pts=timeline.pts[end] if end < count else None, stop_output=stop if stop < count else None)
        segments.append(Segment(start, stop, warmup, span))
    return segments


def part_path(folder: Path, index: int, suffix: str = ".mp4") -> Path:
    """A part's file. Parts are MP4 whatever the output: it keeps every packet's decode timestamp, which Matroska
    does not."""
    return folder / f"part{index:04d}{suffix}"


def _packets(path: Path) -> Iterator[av.Packet]:
    """A part's video packets, in file order (increasing dts)."""
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                yield packet


def join_videos(parts: list[Path], source: Path, out: Path, replace: bool = True) -> list[str]:
    """Remux the parts' video packets, with the source's audio and subtitle packets interleaved by time, into
    ``out`` (atomically), with the source's metadata and chapters. Parts must come from the same encoder settings
    (their codec headers are compared); the first part's stream, display rotation and colour tags included, is
    the output's. Returns the names of the source's streams the output does not carry. ``replace=False``: never
    replaces a file that appeared at ``out`` meanwhile (``models.atomic.AtomicFile``)."""
    headers = []
    for part in parts:
        with av.open(str(part)) as container:
            headers.append(bytes(container.streams.video[0].codec_context.extradata or b""))
    if any(h != headers[0] for h in headers):
        raise DicfaceError(f"{out}: the parts were encoded with different codec headers and cannot be joined")
    with atomic_output(out, replace) as tmp, av.open(str(parts[0])) as first, av.open(str(source)) as src, \
            av.open(str(tmp), mode="w", format=container_format(out)) as container:
        video = container.add_stream_from_template(first.streams.video[0])
        video.metadata.update(src.streams.video[0].metadata)
        # a stream copy has no frame rate, which the MOV/MP4 muxer needs to write a kept timecode's track
        video.codec_context.framerate = first.streams.video[0].average_rate
        container.metadata.update(src.metadata)
        outputs, dropped = copy_streams(container, [s for s in src.streams if s.type in COPIED_TYPES])  # as VideoSink
        copied = [s for s in src.streams if s.index in outputs]
        if src.chapters():
            container.set_chapters(src.chapters())
        others = (p for p in src.demux(*copied) if p.size and p.dts is not None) if copied else iter(())
        pictures = (p for part in parts for p in _packets(part))
        # The source's packets first where times are equal (merge keeps the order of its inputs on ties).
        for packet in heapq.merge(others, pictures, key=_seconds):
            packet.stream = video if packet.stream.type == "video" else outputs[packet.stream.index]
            container.mux(packet)
        return dropped + list(unkept_streams(src))


def _seconds(packet: av.Packet) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return float(stamp * packet.time_base) if stamp is not None else 0.0
