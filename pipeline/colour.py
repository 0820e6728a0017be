"""Colour of decoded and encoded video: the input's colour tags and HDR10 metadata, kept on the way out, exact
YUV <-> RGB conversion flags, deep (more than 8-bit) samples, and the output pixel format that keeps the input's."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.video.reformatter import Interpolation


def to_8bit(deep: np.ndarray) -> np.ndarray:
    """(..., 3) uint16 RGB -> uint8, rounded (65535 / 255 = 257)."""
    return ((deep.astype(np.uint32) + 128) // 257).astype(np.uint8)


def is_deep(pix_fmt: str) -> bool:
    """A pixel format of more than 8 bits per sample (yuv420p10le, p010le, yuv444p12le ...)."""
    return any(depth in pix_fmt for depth in ("p10", "p12", "p14", "p16", "010", "016"))


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


UNSPECIFIED, RESERVED, BT709, BT601 = 2, 3, 1, 6  # matrix code points (BT601 = SMPTE 170M)

LIMITED_RANGE, FULL_RANGE = 1, 2

# swscale flags for YUV <-> RGB: accurate rounding and full chroma resolution. With the defaults a flat colour
# drifted by 3-6 levels over three round trips; with these it stays exact (measured on 8-bit 4:2:0 and 10-bit).
EXACT_CONVERSION = (Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
                    | Interpolation.FULL_CHR_H_INP)

# Pixel formats ``auto`` keeps (the input's own when the encoder takes it); anything else is written as yuv420p.
KEPT_PIX_FMTS = ("yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le", "yuv420p12le",
                 "yuv422p12le", "yuv444p12le", "gray", "gray10le")

JPEG_RANGE_FMTS = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}


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
