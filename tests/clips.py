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


FACE_BOX = (150, 40, 300, 220)  # x1, y1, x2, y2 of the astronaut's head in skimage.data.astronaut()


def face_source() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's head (180x150 RGB) and its 68 landmarks (dlib, in that crop's pixels)."""
    from skimage import data

    from pipeline.detect.dlib_backend import DlibDetector

    x1, y1, x2, y2 = FACE_BOX
    head = np.ascontiguousarray(data.astronaut()[y1:y2, x1:x2])
    return head, DlibDetector(upsample=1)(head)[0].landmarks


def make_face_clip(
    path: Path, count: int = 24, width: int = 640, height: int = 360, fps: int = 25, audio: bool = True,
    face_widths: tuple[int, ...] = (36, 28),
) -> list[np.ndarray]:
    """A clip of real faces (the astronaut, and its mirror image) ``face_widths`` px wide moving right by 1.5 px and
    down by 0.5 px per frame over a smooth background. Returns the true landmarks: (count, faces, 68, 2)."""
    from models.faces import resize_bicubic

    head, landmarks = face_source()
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([80 + 60 * xx / width, 90 + 40 * yy / height, 110 + 0 * xx], axis=2).astype(np.uint8)
    truths = np.zeros((count, len(face_widths), 68, 2), np.float32)
    frames = []
    for t in range(count):
        frame = background.copy()
        for k, w in enumerate(face_widths):
            src, pts = (head, landmarks) if k % 2 == 0 else (np.ascontiguousarray(head[:, ::-1]), None)
            if pts is None:
                from models.data import FLIP_68

                pts = landmarks[FLIP_68].copy()
                pts[:, 0] = head.shape[1] - 1 - pts[:, 0]
            h = round(w * head.shape[0] / head.shape[1])
            x0, y0 = 80 + 260 * k + 1.5 * t, 120 + 0.5 * t
            xi, yi = int(x0), int(y0)
            small = resize_bicubic(src, (w, h))
            frame[yi : yi + h, xi : xi + w] = small
            scale = np.array([w / head.shape[1], h / head.shape[0]])
            truths[t, k] = (pts + 0.5) * scale - 0.5 + (xi, yi)
        frames.append(frame)
    _encode(path, frames, fps, audio)
    return truths


def _encode(path: Path, frames: list[np.ndarray], fps: int, audio: bool) -> None:
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        video.codec_context.options = {"crf": "12"}
        sound = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            samples = int(48000 * len(frames) / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(tone[start : start + 1024][None], format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                out.mux(sound.encode(af))
            out.mux(sound.encode())
