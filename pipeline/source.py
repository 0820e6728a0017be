"""Video in with PyAV (``pipeline.sink`` is the way out): decoded frames keep their timestamps.

A source yields ``Frame`` records in display order and collects the packets of every audio and subtitle stream it
demuxes on the way (``take_packets``), for the sink to remux untouched. The decoder is flushed: no last frames are
lost. A source of more than 8 bits per sample also gives each frame at 16 bits (``Frame.deep``). Sources: a video
file or a stream URL FFmpeg opens (``FileSource``, a ``Span`` of a file for a part of a split run) and a folder of
images (``ImageFolderSource``); an unreadable input is explained (a cut transport stream, a file that is not a
video).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dicface.models.errors import InputError, InputNotFound
from dicface.models.imageio import list_images, read_rgb
from dicface.pipeline.colour import EXACT_CONVERSION, ColorTags, HdrMetadata, is_deep, to_8bit
from dicface.pipeline.types import Frame


def fit_size(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A frame of another size scaled to the stream's (a stream whose resolution changes mid-way, as MPEG-TS and
    live sources may): area averaging to shrink, bicubic to enlarge. Shape: (h, w, 3) -> (height, width, 3)."""
    shrink = image.shape[0] * image.shape[1] > width * height
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


COPIED_TYPES = ("audio", "subtitle")  # streams remuxed packet for packet


@dataclass(frozen=True)
class StreamInfo:
    """What the sink needs to reproduce the video stream."""

    width: int
    height: int
    fps: Fraction  # average frame rate (encoder rate control); timestamps come from each frame
    time_base: Fraction
    rotation: int  # display rotation in degrees, counter-clockwise (phone videos)
    frame_count: int | None  # as declared by the container; may be missing or approximate
    has_audio: bool
    color: ColorTags = field(default_factory=ColorTags)
    metadata: tuple[tuple[str, str], ...] = ()  # the container's (title, creation_time ...)
    video_metadata: tuple[tuple[str, str], ...] = ()  # the video stream's (language, handler ...)
    chapters: tuple[dict, ...] = ()  # as PyAV's Container.chapters() gives them
    hdr: HdrMetadata | None = None  # as the first frame carries it
    unkept: tuple[str, ...] = ()  # input streams no output carries (data streams, more video streams)


def is_url(source: str | os.PathLike[str]) -> bool:
    """rtsp://, http(s)://, ... : a stream FFmpeg opens, not a file path."""
    return "://" in str(source)


# Streams: RTSP over TCP (no UDP loss), and PyAV's (open, read) timeouts in seconds, so a dead camera is an error
# instead of a hang.
STREAM_OPTIONS = {"rtsp_transport": "tcp"}

STREAM_TIMEOUTS = (10.0, 10.0)


@dataclass(frozen=True)
class Span:
    """A part of a video file (``pipeline.segments``): decode from the keyframe at ``seek_pts`` (stream time base),
    number the first frame at that pts ``first_index``, end before ``stop_pts`` (None: the end of the file).
    Frames before index ``first_output`` are context for the tracker, frames from ``stop_output`` on (None: none)
    context for the temporal fusion's lookahead; neither is output. No audio is read."""

    seek_pts: int
    first_index: int
    first_output: int
    stop_pts: int | None
    stop_output: int | None = None


class FileSource:
    """Decode a video file (or a stream URL that FFmpeg opens) frame by frame."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None,
                 stream_options: dict[str, str] | None = None,
                 timeouts: tuple[float, float] = STREAM_TIMEOUTS, span: Span | None = None) -> None:
        """``stream_options``: FFmpeg options added for a stream URL (e.g. ``rtsp_flags=listen``); ``timeouts``:
        (open, read) in seconds for a stream URL; ``span``: decode only that part of a file."""
        stream = is_url(path)
        self.path = str(path) if stream else Path(path)
        if not stream and not self.path.exists():
            raise InputNotFound(f"{self.path}: no such file")
        if not stream and self.path.is_file() and self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file")
        try:
            if stream:
                self._container = av.open(self.path, options=STREAM_OPTIONS | (stream_options or {}),
                                          timeout=timeouts)
            else:
                self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            if stream:
                raise InputError(f"{self.path}: cannot open the stream ({exc})") from exc
            raise InputError(f"{self.path}: not a readable video ({_why_unreadable(self.path, exc)})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: no video stream (audio only?); pass a file with a video track")
        self._video = self._container.streams.video[0]
        if threads:
            self._video.codec_context.thread_count = threads
        # Audio and subtitle streams are copied packet for packet (not for a part of a file: the join adds them).
        self.copy_streams = [s for s in self._container.streams if s.type in COPIED_TYPES] if span is None else []
        self._packets: list[av.Packet] = []
        self.span = span
        self.first_output = span.first_output if span else 0
        self.stop_output = span.stop_output if span else None
        if span is not None:
            self._container.seek(span.seek_pts, stream=self._video, backward=True, any_frame=False)
        self.corrupt_packets = 0
        # why decoding ended before the end of the recording, if it did (a damaged tail, a cut file)
        self.stopped_early: str | None = None if stream else cut_transport_stream(self.path, self._container)
        fps = self._video.average_rate or self._video.guessed_rate or Fraction(25)
        self._frames = self._decode()
        first = next(self._frames, None)  # decoded now: the display rotation is frame side data
        if first is None:
            self._container.close()
            raise InputError(f"{self.path}: no decodable video frame")
        self._first: Frame | None = first[0]
        self.info = StreamInfo(
            width=self._video.codec_context.width,
            height=self._video.codec_context.height,
            fps=Fraction(fps),
            time_base=Fraction(self._video.time_base or Fraction(1, 90000)),
            rotation=first[1],
            frame_count=self._video.frames or None,
            has_audio=any(s.type == "audio" for s in self.copy_streams),
            color=first[2],
            hdr=first[3],
            metadata=tuple(self._container.metadata.items()),
            video_metadata=tuple(self._video.metadata.items()),
            chapters=tuple(self._container.chapters()) if span is None else (),
            unkept=unkept_streams(self._container) if span is None else (),
        )

    def take_packets(self) -> list[av.Packet]:
        """Packets of the copied streams (``copy_streams``) demuxed since the last call."""
        packets, self._packets = self._packets, []
        return packets

    def _decode(self) -> Iterator[tuple[Frame, int, ColorTags, HdrMetadata | None]]:
        """(frame, display rotation, colour tags, HDR metadata of the first frame) in decode order; the final empty
        packet flushes the decoder. Each frame becomes RGB by its own matrix and range (``ColorTags.resolved``)."""
        streams = [self._video, *self.copy_streams]
        span = self.span
        index = first = span.first_index if span else 0
        try:
            for packet in self._container.demux(*streams):
                if packet.stream.type != "video":
                    if packet.dts is not None or packet.pts is not None:
                        self._packets.append(packet)
                    continue
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    self.corrupt_packets += 1
                    continue
                for frame in decoded:
                    if span and frame.pts is not None and frame.pts < span.seek_pts:
                        continue  # a leading frame of an open GOP: it belongs before the span
                    if span and span.stop_pts is not None and (frame.pts is None or frame.pts >= span.stop_pts):
                        return
                    time_base = Fraction(frame.time_base or self._video.time_base or Fraction(1, 90000))
                    tags = ColorTags.of(frame).resolved(frame.height)
                    deep = None
                    if is_deep(frame.format.name):
                        deep = frame.to_ndarray(format="rgb48le", src_colorspace=tags.matrix,
                                                src_color_range=tags.range, interpolation=EXACT_CONVERSION)
                        rgb = to_8bit(deep)
                    else:
                        rgb = frame.to_ndarray(format="rgb24", src_colorspace=tags.matrix,
                                               src_color_range=tags.range, interpolation=EXACT_CONVERSION)
                    hdr = HdrMetadata.of(frame) if index == first else None
                    yield Frame(index, frame.pts, time_base, rgb, deep), int(frame.rotation or 0), tags, hdr
                    index += 1
        except av.FFmpegError as exc:
            if index == first:
                raise InputError(f"{self.path}: no decodable video frame ({exc})") from exc
            # A damaged or cut tail: keep what was decoded, as ffmpeg does, and say so in the report.
            self.stopped_early = f"decoding stopped after frame {index - 1} ({exc})"

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise RuntimeError("a FileSource can be iterated once")
        first, self._first = self._first, None
        yield first
        del first  # not held for the whole run
        for frame, *_ in self._frames:
            yield frame

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageFolderSource:
    """A folder of images (sorted by name) as a video at ``fps``; every image must have the same size."""

    def __init__(self, folder: str | os.PathLike[str], fps: Fraction = Fraction(25)) -> None:
        self.paths = list_images([folder])
        first = read_rgb(self.paths[0])
        self.copy_streams: list[av.stream.Stream] = []
        self.first_output, self.stop_output = 0, None
        self.corrupt_packets = 0
        self.stopped_early: str | None = None
        self.info = StreamInfo(first.shape[1], first.shape[0], Fraction(fps), 1 / Fraction(fps), 0,
                               len(self.paths), False)

    def take_packets(self) -> list[av.Packet]:
        return []

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image = read_rgb(path)
            if image.shape[:2] != (self.info.height, self.info.width):
                raise InputError(f"{path}: size {image.shape[1]}x{image.shape[0]} differs from the first image "
                                 f"({self.info.width}x{self.info.height})")
            yield Frame(index, index, self.info.time_base, image)

    def close(self) -> None:
        pass

    def __enter__(self) -> ImageFolderSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_name(stream: av.stream.Stream) -> str:
    """How a stream is named in warnings: its type, index and codec (or handler)."""
    codec = stream.codec_context.name if stream.codec_context is not None else None
    return f"{stream.type} stream #{stream.index} ({codec or stream.metadata.get('handler_name', 'unknown')})"


def is_timecode(stream: av.stream.Stream) -> bool:
    """A QuickTime/MP4 timecode track: the muxer writes it anew from the video stream's ``timecode`` tag, which is
    kept."""
    return stream.type == "data" and "timecode" in stream.metadata


def unkept_streams(container: av.container.InputContainer) -> tuple[str, ...]:
    """Names of the streams of an input that no output carries: all but the first video stream, the copied types
    and a timecode track."""
    video = container.streams.video[0]
    return tuple(stream_name(s) for s in container.streams
                 if s is not video and s.type not in COPIED_TYPES and not is_timecode(s))


def open_source(path: str | os.PathLike[str]) -> FileSource | ImageFolderSource:
    """A folder of images, a video file or a stream URL."""
    return ImageFolderSource(path) if not is_url(path) and Path(path).is_dir() else FileSource(path)


# Box types that open an ISO base media file (MP4, MOV): a file that starts otherwise is not one, cut or whole.
ISO_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid")


def _why_unreadable(path: Path, exc: Exception) -> str:
    """FFmpeg's reason; for an MP4/MOV whose index (the 'moov' box) is missing, the likely cause; for a file named
    so that is no MP4/MOV at all, that."""
    if path.suffix.lower() in (".mp4", ".m4v", ".mov") and path.is_file():
        with open(path, "rb") as f:
            if f.read(8)[4:] not in ISO_FIRST_BOXES:
                return f"not an MP4/MOV file: it does not start with an MP4 box ({exc})"
            tail, found = b"", False
            for chunk in iter(lambda: f.read(1 << 24), b""):
                found = found or b"moov" in tail + chunk
                tail = chunk[-3:]
        if not found:
            return ("its index (moov box) is missing: the file was cut before the recording finished; "
                    "try a repair tool such as untrunc with a good file from the same camera")
    return str(exc)


TS_PACKET_SIZES = (188, 192)  # MPEG-TS; M2TS (Blu-ray, AVCHD) adds a 4-byte timestamp to each


def cut_transport_stream(path: Path, container: av.container.InputContainer) -> str | None:
    """A warning for an MPEG-TS file that ends inside a transport packet: it was cut (a recording or download that
    stopped), and its last frames may be missing or damaged. None for a whole one, or another format."""
    if container.format.name != "mpegts" or not path.is_file():
        return None
    size = path.stat().st_size
    if all(size % packet for packet in TS_PACKET_SIZES):
        return "the MPEG-TS file ends inside a packet: it was cut, and its last frames may be missing"
    return None
