"""Video in and out with PyAV: decoded frames keep their timestamps; audio and subtitles are remuxed untouched.

A source yields ``Frame`` records in display order and collects the packets of every audio and subtitle stream it
demuxes on the way (``take_packets``); the sink encodes frames (libx264 by default) with their original pts and
time base, keeps the rotation, colour tags, HDR10 metadata (with libx265), container and stream metadata (title,
language, creation time, timecode) and chapters, muxes the copied packets as they come, and only renames its
temporary file to the output when ``close`` is called without an error. A stream the output container cannot hold
(SubRip in MP4 ...), and data streams and further video streams, are left out and named in ``dropped_streams``.
Decoder and encoder are both flushed: no last frames are lost. A source of more than 8 bits per sample also gives
each frame at 16 bits (``Frame.deep``), which the sink encodes where it is given.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.video.reformatter import Interpolation

from dicface.configs.video import X26X_CODECS, EncodeOptions
from dicface.models.atomic import AtomicFile, is_write_error, output_error
from dicface.models.errors import InputError, InputNotFound
from dicface.models.imageio import list_images, read_rgb
from dicface.pipeline.types import Frame


def to_8bit(deep: np.ndarray) -> np.ndarray:
    """(..., 3) uint16 RGB -> uint8, rounded (65535 / 255 = 257)."""
    return ((deep.astype(np.uint32) + 128) // 257).astype(np.uint8)


def is_deep(pix_fmt: str) -> bool:
    """A pixel format of more than 8 bits per sample (yuv420p10le, p010le, yuv444p12le ...)."""
    return any(depth in pix_fmt for depth in ("p10", "p12", "p14", "p16", "010", "016"))


def fit_size(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A frame of another size scaled to the stream's (a stream whose resolution changes mid-way, as MPEG-TS and
    live sources may): area averaging to shrink, bicubic to enlarge. Shape: (h, w, 3) -> (height, width, 3)."""
    shrink = image.shape[0] * image.shape[1] > width * height
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


@dataclass(frozen=True)
class ColorTags:
    """How a video's YUV samples map to colour, in FFmpeg's code points (``av.video.reformatter``): primaries,
    transfer, matrix (colorspace) and range (0 unspecified, 1 limited/MPEG, 2 full/JPEG); ``pix_fmt``: the
    decoded pixel format (its family is kept by ``EncodeOptions(pix_fmt="auto")``)."""

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0
    pix_fmt: str = "yuv420p"

    @classmethod
    def of(cls, frame: av.VideoFrame) -> ColorTags:
        return cls(int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace), int(frame.color_range),
                   frame.format.name)

    def resolved(self, height: int) -> ColorTags:
        """The matrix and range to convert with (and to tag the output with): the tagged ones; untagged, FFmpeg's
        convention by the video's height (BT.709 above 576 lines, BT.601 up to them) and limited range (full for
        the JPEG-range ``yuvj`` formats). Primaries and transfer are kept as tagged (they need no conversion)."""
        matrix = self.matrix if self.matrix not in (UNSPECIFIED, RESERVED) else (BT709 if height > 576 else BT601)
        full = self.range == FULL_RANGE or (self.range == 0 and self.pix_fmt.startswith("yuvj"))
        return replace(self, matrix=matrix, range=FULL_RANGE if full else LIMITED_RANGE)


@dataclass(frozen=True)
class HdrMetadata:
    """HDR10 static metadata as a video's frames carry it, in x265's units: the mastering display's primaries and
    white point (G, B, R, WP; x, y in 0.00002) and luminance (max, min in 0.0001 cd/m2); the content light level
    (MaxCLL, MaxFALL in cd/m2)."""

    mastering: tuple[int, ...] | None = None  # Gx Gy Bx By Rx Ry WPx WPy Lmax Lmin
    light_level: tuple[int, int] | None = None

    @classmethod
    def of(cls, frame: av.VideoFrame) -> HdrMetadata | None:
        mastering = light = None
        side = frame.side_data
        for i in range(len(side)):  # by position: PyAV 18's iteration over side data fails on SEI entries
            entry = side[i]
            if entry.type == SideDataType.MASTERING_DISPLAY_METADATA:
                v = struct.unpack("<22i", bytes(entry)[:88])  # 3 x (x, y) R G B, white point, min, max, flags
                chroma = [round(50000 * v[k] / v[k + 1]) if v[k + 1] else 0 for k in range(0, 16, 2)]
                (rx, ry, gx, gy, bx, by, wx, wy) = chroma
                lum_min = round(10000 * v[16] / v[17]) if v[17] else 0
                lum_max = round(10000 * v[18] / v[19]) if v[19] else 0
                if v[20] and v[21]:  # primaries and luminance both present
                    mastering = (gx, gy, bx, by, rx, ry, wx, wy, lum_max, lum_min)
            elif entry.type == SideDataType.CONTENT_LIGHT_LEVEL:
                light = struct.unpack("<2I", bytes(entry)[:8])
        return cls(mastering, light) if mastering or light else None

    def x265_params(self) -> str:
        parts = []
        if self.mastering:
            parts.append("master-display=G({},{})B({},{})R({},{})WP({},{})L({},{})".format(*self.mastering))
        if self.light_level:
            parts.append("max-cll={},{}".format(*self.light_level))
        return ":".join(parts)


COPIED_TYPES = ("audio", "subtitle")  # streams remuxed packet for packet
UNSPECIFIED, RESERVED, BT709, BT601 = 2, 3, 1, 6  # matrix code points (BT601 = SMPTE 170M)
LIMITED_RANGE, FULL_RANGE = 1, 2
# swscale flags for YUV <-> RGB: accurate rounding and full chroma resolution. With the defaults a flat colour
# drifted by 3-6 levels over three round trips; with these it stays exact (measured on 8-bit 4:2:0 and 10-bit).
EXACT_CONVERSION = (Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
                    | Interpolation.FULL_CHR_H_INP)


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
    color: ColorTags = ColorTags()
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


# Pixel formats ``auto`` keeps (the input's own when the encoder takes it); anything else is written as yuv420p.
KEPT_PIX_FMTS = ("yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le", "yuv420p12le",
                 "yuv422p12le", "yuv444p12le", "gray", "gray10le")
JPEG_RANGE_FMTS = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}


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


@functools.cache
def _matroska_codecs() -> frozenset[str]:
    with av.open(io.BytesIO(), mode="w", format="matroska") as container:
        return frozenset(container.supported_codecs)


def copy_streams(container: av.container.OutputContainer, templates: Sequence[av.stream.Stream]
                 ) -> tuple[dict[int, av.stream.Stream], list[str]]:
    """Add a stream-copy of each template (with its metadata) that ``container`` can hold. Returns the input
    stream index -> output stream, and the names of the templates it cannot hold (SubRip in MP4 ...), each with
    "(.mkv keeps it)" where a Matroska output would."""
    copies, dropped = {}, []
    for template in templates:
        codec = template.codec_context.name
        if codec not in container.supported_codecs:
            mkv = container.format.name != "matroska" and codec in _matroska_codecs()
            dropped.append(stream_name(template) + (" (.mkv keeps it)" if mkv else ""))
            continue
        copies[template.index] = container.add_stream_from_template(template)
        copies[template.index].metadata.update(template.metadata)
    return copies, dropped


def output_pix_fmt(requested: str, color: ColorTags, codec: str) -> str:
    """The pixel format to encode: ``requested``, or for ``auto`` the input's (a JPEG-range ``yuvj`` format as its
    plain twin, the range being tagged) when ``codec`` can encode it, else yuv420p."""
    if requested != "auto":
        return requested
    family = JPEG_RANGE_FMTS.get(color.pix_fmt, color.pix_fmt)
    try:
        supported = {f.name for f in av.codec.Codec(codec, "w").video_formats or ()}
    except (av.FFmpegError, ValueError):
        supported = set()
    return family if family in KEPT_PIX_FMTS and family in supported else "yuv420p"


def check_encoder(options: EncodeOptions) -> None:
    """An ``InputError`` unless ``options.codec`` is a video encoder of this FFmpeg that takes ``options.pix_fmt``
    (crf and preset ranges are checked by ``EncodeOptions`` itself)."""
    try:
        codec = av.codec.Codec(options.codec, "w")
    except (av.FFmpegError, ValueError):
        codec = None
    if codec is None or codec.type != "video":
        raise InputError(f"encode.codec: {options.codec!r} is not a video encoder of this FFmpeg (e.g. libx264, "
                         f"libx265, libvpx-vp9)")
    formats = [f.name for f in codec.video_formats or ()]
    if options.pix_fmt != "auto" and formats and options.pix_fmt not in formats:
        raise InputError(f"encode.pix_fmt: {options.codec} cannot encode {options.pix_fmt!r}; use auto or one of "
                         f"{', '.join(formats)}")


def open_source(path: str | os.PathLike[str]) -> FileSource | ImageFolderSource:
    """A folder of images, a video file or a stream URL."""
    return ImageFolderSource(path) if not is_url(path) and Path(path).is_dir() else FileSource(path)


class VideoSink:
    """Encode frames to ``path`` through a temporary file; ``close()`` renames it, ``abort()`` removes it. An
    ``rtsp://`` path is pushed to that RTSP server instead (over TCP), as it is encoded.

    Frames of odd width or height are padded by one edge pixel (yuv420p needs even sizes).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: StreamInfo,
        templates: Sequence[av.stream.Stream] = (),
        options: EncodeOptions = EncodeOptions(),
        replace: bool = True,
    ) -> None:
        """``replace=False``: the finished file never replaces one at ``path`` (``models.atomic.AtomicFile``)."""
        self.path = Path(path)
        self.info = info
        self.options = options
        self.frames_written = 0
        self.retimed_frames = 0
        self._last_pts: int | None = None
        self.url = str(path) if is_url(path) else None
        self._file = None if self.url else AtomicFile(self.path, replace)
        try:
            if self.url:
                self._container = av.open(self.url, mode="w", format="rtsp", options=STREAM_OPTIONS,
                                          timeout=STREAM_TIMEOUTS)
            else:
                self._container = av.open(str(self._file.tmp), mode="w", format=container_format(self.path))
            self._video = self._container.add_stream(options.codec, rate=info.fps)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._discard()
            raise InputError(f"{self.url or self.path}: cannot encode with {options.codec} into this output "
                             f"({exc})") from exc
        self._video.width = info.width + info.width % 2
        self._video.height = info.height + info.height % 2
        self._video.pix_fmt = output_pix_fmt(options.pix_fmt, info.color, options.codec)
        # the input's colour tags go with the video; RGB is converted back by the matrix and range it came with
        self._color = info.color.resolved(info.height)  # a file's are resolved already (by the input's height)
        context = self._video.codec_context
        context.color_primaries, context.color_trc = self._color.primaries, self._color.transfer
        context.colorspace, context.color_range = self._color.matrix, self._color.range
        self._video.codec_context.time_base = info.time_base
        hdr_kept = False
        if options.codec in X26X_CODECS:
            # Pushed live: no B-frames or look-ahead (RTP needs increasing timestamps, viewers want low latency).
            live = {"tune": "zerolatency"} if self.url else {}
            # HDR10 metadata: x265 writes it into the stream (SEI) from its parameters; PyAV cannot hand frame side
            # data to libx264, so there it is reported as dropped
            hdr_kept = options.codec == "libx265" and info.hdr is not None
            hdr = {"x265-params": info.hdr.x265_params()} if hdr_kept and info.hdr is not None else {}
            self._video.codec_context.options = {"crf": str(options.crf), "preset": options.preset} | live | hdr
        if info.rotation:
            self._video.set_display_rotation(info.rotation)
        self._container.metadata.update(dict(info.metadata))
        self._video.metadata.update(dict(info.video_metadata))
        self._copies, self.dropped_streams = copy_streams(self._container, templates)
        self.dropped_streams += list(info.unkept)
        if info.hdr is not None and not hdr_kept:
            self.dropped_streams.append("HDR10 mastering display and light level metadata (kept with --codec "
                                        "libx265)")
        if info.chapters and not self.url:
            self._container.set_chapters(list(info.chapters))
        self._closed = False

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """OS errors of writing the file (disk full ...) as one OutputError naming the output."""
        try:
            yield
        except OSError as exc:
            if self._file is None or not is_write_error(exc, self._file.tmp):
                raise
            raise output_error(self.path, exc) from exc

    def write_packets(self, packets: list[av.Packet]) -> None:
        """Mux packets of the source's copied streams, unchanged (those of a dropped stream are skipped)."""
        with self._writing():
            for packet in packets:
                copy = self._copies.get(packet.stream.index)
                if copy is not None:
                    packet.stream = copy
                    self._container.mux(packet)

    def write(self, frame: Frame, image: np.ndarray | None = None) -> None:
        """Encode ``image`` (uint8 or, from a deep frame, uint16 RGB; default: the frame's own pixels, at full
        precision where it has them) at the frame's timestamp."""
        pixels = image if image is not None else frame.deep if frame.deep is not None else frame.image
        if pixels.shape[:2] != (self.info.height, self.info.width):
            raise ValueError(f"frame {frame.index} is {pixels.shape[1]}x{pixels.shape[0]}, "
                             f"the stream {self.info.width}x{self.info.height}")
        if pixels.shape[0] % 2 or pixels.shape[1] % 2:
            pixels = np.pad(pixels, ((0, pixels.shape[0] % 2), (0, pixels.shape[1] % 2), (0, 0)), mode="edge")
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels),
                                         format="rgb48le" if pixels.dtype == np.uint16 else "rgb24")
        # tagged on the RGB frame, not asked of the conversion: FFmpeg would convert the gamut, but these pixels
        # are still in the input's primaries and transfer
        rgb.color_primaries, rgb.color_trc = self._color.primaries, self._color.transfer
        video_frame = rgb.reformat(format=self._video.pix_fmt, dst_colorspace=self._color.matrix,
                                   dst_color_range=self._color.range, interpolation=EXACT_CONVERSION)
        video_frame.pts, video_frame.time_base = self._timestamp(frame), self.info.time_base
        with self._writing():
            self._container.mux(self._video.encode(video_frame))
        self.frames_written += 1

    def _timestamp(self, frame: Frame) -> int:
        """The frame's time in the stream's time base, kept strictly increasing: a timestamp that goes back or
        repeats (concatenated recordings, a time base that changes mid-stream) follows the previous frame by one
        frame interval and is counted in ``retimed_frames``."""
        seconds = (frame.pts if frame.pts is not None else frame.index) * frame.time_base
        pts = round(seconds / self.info.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + max(1, round(1 / (self.info.fps * self.info.time_base)))
            self.retimed_frames += 1
        self._last_pts = pts
        return pts

    def close(self) -> None:
        """Flush the encoder, finish the file and move it into place."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._writing():
                self._container.mux(self._video.encode())  # flush
                self._container.close()
            if self._file:
                self._file.commit()
        finally:
            self._discard()

    def abort(self) -> None:
        """Drop the output: nothing is left behind."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            pass  # the file is dropped anyway (a full disk may fail its trailer too); the first error is reported
        finally:
            self._discard()

    def _discard(self) -> None:
        if self._file:
            self._file.discard()

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()


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


_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
WRITABLE_SUFFIXES = tuple(_FORMATS)


def container_format(path: Path) -> str:
    """The container format PyAV writes for an output file name (.mp4, .mkv ...)."""
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"{path}: unknown output format; use one of {', '.join(sorted(_FORMATS))}") from None
