"""Test clips generated with PyAV from a real photo (scikit-image's astronaut) with known motion."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def panning_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """(H, W, 3) uint8 RGB frames: the astronaut photo panned right by 2 px per frame."""
    from skimage import data

    photo = data.astronaut()
    return [np.ascontiguousarray(photo[100 : 100 + height, 20 + 2 * i : 20 + 2 * i + width]) for i in range(count)]


def make_clip(
    path: Path,
    count: int = 30,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    audio: bool = True,
    rotation: int = 0,
    pts: list[int] | None = None,
) -> list[np.ndarray]:
    """Write an H.264 clip (and a 440 Hz AAC tone when ``audio``); returns the frames written.

    ``pts`` (in 1/fps units) makes a variable-frame-rate clip; ``rotation`` sets the display matrix.
    """
    frames = panning_frames(count, width, height)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        for i, image in enumerate(frames):
            padded = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(padded, format="rgb24")
            frame.pts = pts[i] if pts else i
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            samples = int(48000 * count / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[start : start + 1024][None]
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                out.mux(sound.encode(af))
            out.mux(sound.encode())
    return frames
