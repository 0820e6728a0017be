"""Test clips generated with PyAV from a real photo (scikit-image's astronaut) with known motion
(face clips: ``pipeline.examples``)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from dicface.pipeline.examples import make_face_clip, write_clip

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


def make_two_angle_clip(path: Path, frames: int = 3) -> None:
    """A camera-like MOV: an H.264 video with a timecode, and a second (MJPEG) video stream, as a second angle or
    cover art would be."""
    with av.open(str(path), "w") as out:
        main_video, other = out.add_stream("libx264", rate=25), out.add_stream("mjpeg", rate=25)
        main_video.metadata["timecode"] = "01:02:03:04"
        for stream in (main_video, other):
            stream.width, stream.height = 64, 48
        other.pix_fmt = "yuvj420p"
        for i in range(frames):
            image = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="rgb24")
            image.pts = i
            out.mux(main_video.encode(image.reformat(format="yuv420p")))
            out.mux(other.encode(image.reformat(format="yuvj420p")))
        out.mux(main_video.encode())
        out.mux(other.encode())
