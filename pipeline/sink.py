"""Video out with PyAV: the sink encodes frames (libx264 by default) with their original pts and time base, keeps
the rotation, colour tags, HDR10 metadata (with libx265), container and stream metadata (title, language, creation
time, timecode) and chapters, muxes the source's copied audio and subtitle packets as they come, and only renames
its temporary file to the output when ``close`` is called without an error. A stream the output container cannot
hold (SubRip in MP4 ...), and data streams and further video streams, are left out and named in
``dropped_streams``. The encoder is flushed: no last frames are lost.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from dicface.configs.video import X26X_CODECS, EncodeOptions
from dicface.models.atomic import AtomicFile, is_write_error, output_error
from dicface.models.errors import InputError
from dicface.pipeline.colour import EXACT_CONVERSION, output_pix_fmt
from dicface.pipeline.source import STREAM_OPTIONS, STREAM_TIMEOUTS, StreamInfo, is_url, stream_name
from dicface.pipeline.types import Frame


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


_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}

WRITABLE_SUFFIXES = tuple(_FORMATS)


def container_format(path: Path) -> str:
    """The container format PyAV writes for an output file name (.mp4, .mkv ...)."""
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"{path}: unknown output format; use one of {', '.join(sorted(_FORMATS))}") from None
