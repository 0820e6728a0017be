"""Example clips generated from real photos that ship in installed wheels: the bundled demo, benchmarks and tests.

Nothing is downloaded: the astronaut photo is part of scikit-image's wheel, the held-out group photo (six faces,
``insightface/data/images/t1.jpg``) of insightface's. The faces move with a known motion, so their true 68 landmarks
in every frame follow from the landmarks of the source photo. The astronaut is what the defaults were looked at on;
the six held-out faces were never used to choose anything, only to report on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dicface.models.atomic import atomic_output
from dicface.models.data import FLIP_68
from dicface.models.errors import InputError
from dicface.models.faces import resize_bicubic
from dicface.models.imageio import list_images, read_rgb
from dicface.pipeline.sink import container_format

HEAD_BOX = (150, 40, 300, 220)  # x1, y1, x2, y2 of the astronaut's head in skimage.data.astronaut()


@dataclass(frozen=True)
class FaceSource:
    """A head photo to paste into clips. head: (H, W, 3) uint8 RGB; landmarks: (68, 2) in its pixels."""

    head: np.ndarray
    landmarks: np.ndarray

    def mirrored(self) -> FaceSource:
        points = self.landmarks[FLIP_68].copy()
        points[:, 0] = self.head.shape[1] - 1 - points[:, 0]
        return FaceSource(np.ascontiguousarray(self.head[:, ::-1]), points)


def face_source() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's head (180x150 RGB) and its 68 landmarks (dlib, in that crop's pixels)."""
    from skimage import data

    from dicface.pipeline.detect.dlib_backend import DlibDetector

    x1, y1, x2, y2 = HEAD_BOX
    head = np.ascontiguousarray(data.astronaut()[y1:y2, x1:x2])
    return head, DlibDetector(upsample=1)(head)[0].landmarks


def astronaut_faces() -> list[FaceSource]:
    """The astronaut and its mirror image (150 px wide heads)."""
    source = FaceSource(*face_source())
    return [source, source.mirrored()]


def heldout_faces() -> list[FaceSource]:
    """The six faces of insightface's group photo (heads about 200 px wide), left to right: faces never used to tune
    anything in dicface. Each head is a box 2x the landmarks' extent, centred a little above them."""
    from importlib.resources import files

    return photo_faces(read_rgb(Path(str(files("insightface") / "data" / "images" / "t1.jpg"))))


def photo_faces(photo: np.ndarray) -> list[FaceSource]:
    """The faces dlib finds in an (H, W, 3) uint8 RGB photo, left to right, each with its head: a box 2x the
    landmarks' extent, centred a little above them (clipped to the photo)."""
    from dicface.pipeline.detect.dlib_backend import DlibDetector

    sources = []
    for det in sorted(DlibDetector(upsample=1)(photo), key=lambda d: d.landmarks[:, 0].mean()):
        low, high = det.landmarks.min(axis=0), det.landmarks.max(axis=0)
        half = float((high - low).max())
        cx, cy = (low + high) / 2 - (0, 0.15 * half)
        x1, y1 = int(max(cx - half, 0)), int(max(cy - half, 0))
        head = photo[y1 : int(cy + half), x1 : int(cx + half)]
        sources.append(FaceSource(np.ascontiguousarray(head), det.landmarks - (x1, y1)))
    return sources


def folder_faces(folder: Path, count: int = 4) -> list[FaceSource]:
    """One face from each of the first photos of ``folder`` (sorted by name) in which dlib finds one, ``count`` in
    all: clips of your own faces for ``dicface bench quality --faces DIR``."""
    sources: list[FaceSource] = []
    for path in list_images([folder]):
        sources += photo_faces(read_rgb(path))[:1]
        if len(sources) == count:
            return sources
    raise InputError(f"{folder}: dlib found a face in only {len(sources)} of its images, {count} needed")


Animation = Callable[[FaceSource, int, int], FaceSource]  # (photo, frame, face index) -> that face in that frame


def face_clip_frames(
    count: int, width: int, height: int, face_widths: Sequence[int] = (36, 28), scale: int = 1,
    sources: Sequence[FaceSource] | None = None, animation: Animation | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames of real faces ``face_widths`` px wide (the k-th from ``sources[k % len]``; default the astronaut and
    its mirror image), spread across the frame and moving right by 1.5 px and down by 0.5 px per frame over a real,
    panning photo (not a face); with ``animation`` (e.g. ``pipeline.talking.talking``) each face in each frame is
    that function's deformed photo instead of the still one.

    ``scale`` renders the same scene ``scale`` times larger from the same sources (ground truth for upscaling).
    Returns the (H, W, 3) uint8 RGB frames and the true landmarks (count, faces, 68, 2) in frame pixels.
    """
    sources = sources or astronaut_faces()
    scenery = _scenery((width + count) * scale, height * scale)
    step = (width - 160) / max(len(face_widths), 1)
    truths = np.zeros((count, len(face_widths), 68, 2), np.float32)
    frames = []
    for t in range(count):
        frame = scenery[:, t * scale : (t + width) * scale].copy()  # the camera pans by 1 px per frame
        for k, w in enumerate(face_widths):
            face = sources[k % len(sources)]
            if animation is not None:
                face = animation(face, t, k)
            src, pts = face.head, face.landmarks
            size = (w * scale, round(w * src.shape[0] / src.shape[1]) * scale)  # exactly K x the 1x patch
            x, y = 80 + step * k + 1.5 * t, height / 3 + 0.5 * t  # top-left pixel centre at scale 1
            x, y = x * scale, y * scale  # the same place at scale K: pixel centres p -> (p + 0.5) K - 0.5, edges x K
            _paste_at(frame, resize_bicubic(src, size), x, y)
            factor = np.array([size[0] / src.shape[1], size[1] / src.shape[0]])
            truths[t, k] = (pts + 0.5) * factor - 0.5 + (x, y)
        frames.append(frame)
    return frames, truths


@dataclass(frozen=True)
class Arrival:
    """A face that comes into a clip: ``width`` px wide, in the picture from frame ``first`` on, its top-left
    corner at ``start`` (x, y) then, moving across the picture by ``velocity`` (px per frame) whatever the camera
    does (as someone walking with it)."""

    width: int
    first: int
    start: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)


def arrivals_clip_frames(count: int, width: int, height: int, arrivals: Sequence[Arrival], pan_from: int | None = None,
                         sources: Sequence[FaceSource] | None = None
                         ) -> tuple[list[np.ndarray], list[list[tuple[float, float, float, float] | None]]]:
    """Frames of real faces that appear, enter past the frame's edge and cross each other over a real photo (the
    k-th face from ``sources[k % len]``); the camera stands still, and pans by 2 px per frame from frame
    ``pan_from`` on. Returns the (H, W, 3) uint8 RGB frames and, per frame, each face's head box (x1, y1, x2, y2;
    None when not yet there or wholly outside the picture)."""
    sources = sources or astronaut_faces()
    scenery = _scenery(width + 2 * count, height)
    frames, boxes = [], []
    for t in range(count):
        pan = 0 if pan_from is None else 2 * max(0, t - pan_from)
        frame = scenery[:, pan : pan + width].copy()
        seen: list[tuple[float, float, float, float] | None] = []
        for k, face in enumerate(arrivals):
            src = sources[k % len(sources)].head
            size = (face.width, round(face.width * src.shape[0] / src.shape[1]))
            x = face.start[0] + face.velocity[0] * (t - face.first)
            y = face.start[1] + face.velocity[1] * (t - face.first)
            box = (x, y, x + size[0], y + size[1])
            if t < face.first or box[2] <= 0 or box[0] >= width - 1 or box[3] <= 0 or box[1] >= height - 1:
                seen.append(None)
                continue
            canvas = np.zeros((height + 2 * size[1] + 4, width + 2 * size[0] + 4, 3), np.uint8)
            ox, oy = size[0] + 2, size[1] + 2  # a margin so a face may stand partly outside the picture
            canvas[oy : oy + height, ox : ox + width] = frame
            _paste_at(canvas, resize_bicubic(src, size), x + ox, y + oy)
            frame = canvas[oy : oy + height, ox : ox + width].copy()
            seen.append(box)
        frames.append(frame)
        boxes.append(seen)
    return frames, boxes


def _paste_at(frame: np.ndarray, patch: np.ndarray, x: float, y: float) -> None:
    """Paste ``patch`` with its top-left corner at the sub-pixel position (x, y): the motion stays smooth, as a
    camera sees it, instead of jumping by whole pixels. The patch's 1-px rim is blended with the frame."""
    xi, yi = int(np.floor(x)), int(np.floor(y))
    h, w = patch.shape[:2]
    shift = np.float32([[1, 0, x - xi + 1], [0, 1, y - yi + 1]])  # into a canvas with a 1-px margin
    canvas = cv2.warpAffine(patch, shift, (w + 2, h + 2), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(np.ones((h, w), np.float32), shift, (w + 2, h + 2), flags=cv2.INTER_LINEAR)[..., None]
    region = frame[yi - 1 : yi + h + 1, xi - 1 : xi + w + 1]
    region[:] = (alpha * canvas + (1 - alpha) * region).round().astype(np.uint8)


def _scenery(width: int, height: int) -> np.ndarray:
    """A real photo without faces (scikit-image's coffee cup), darkened and resized to (height, width, 3)."""
    from skimage import data

    return (resize_bicubic(data.coffee(), (width, height)) * 0.7).astype(np.uint8)


def write_clip(
    path: Path,
    frames: Sequence[np.ndarray],
    fps: int = 25,
    audio: bool = True,
    crf: int = 12,
    pts: Sequence[int] | None = None,
    rotation: int = 0,
    gop: int | None = None,
) -> None:
    """Encode RGB frames as H.264 (odd sizes padded by one edge pixel), with a 440 Hz AAC tone when ``audio``.

    ``pts`` (in 1/fps units) makes a variable-frame-rate clip; ``rotation`` sets the display matrix; ``gop``:
    a keyframe every that many frames (default: x264's, 250).
    """
    height, width = frames[0].shape[:2]
    with atomic_output(path) as tmp, av.open(str(tmp), "w", format=container_format(path)) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        video.codec_context.options = {"crf": str(crf)} | ({"g": str(gop)} if gop else {})
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        for i, image in enumerate(frames):
            padded = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(padded, format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts else i), Fraction(1, fps)
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


def back_and_forth(frames: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` frames that play ``frames`` forwards, backwards, forwards ...: a long clip whose faces keep
    moving and never leave the frame (the list holds references, not copies)."""
    cycle = [*range(len(frames)), *range(len(frames) - 2, 0, -1)]
    return [frames[cycle[i % len(cycle)]] for i in range(count)]


def make_face_clip(
    path: Path, count: int = 24, width: int = 640, height: int = 360, fps: int = 25, audio: bool = True,
    face_widths: Sequence[int] = (36, 28), gop: int | None = None,
) -> np.ndarray:
    """Write a face clip (``face_clip_frames``) to ``path``; returns the true landmarks (count, faces, 68, 2)."""
    frames, truths = face_clip_frames(count, width, height, face_widths)
    write_clip(path, frames, fps, audio, gop=gop)
    return truths
