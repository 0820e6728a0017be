"""Test clips generated with PyAV from a real photo (scikit-image's astronaut) with known motion
(face clips: ``pipeline.examples``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.examples import make_face_clip, write_clip

__all__ = ["make_clip", "make_face_clip", "panning_frames"]


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
    """Write an H.264 clip of the panning photo (and a 440 Hz AAC tone when ``audio``); returns the frames written.

    ``pts`` (in 1/fps units) makes a variable-frame-rate clip; ``rotation`` sets the display matrix.
    """
    frames = panning_frames(count, width, height)
    write_clip(path, frames, fps, audio, crf=23, pts=pts, rotation=rotation)
    return frames
