"""Plain records passed between the pipeline's stages: a decoded frame, a detection, a track, a face crop for
DIC and its enhanced face. Shapes in the docstrings; no behaviour beyond small derived properties."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One face found in one image.

    bbox: (x1, y1, x2, y2) float, image pixels; score: detector confidence (backend-specific scale);
    landmarks: (68, 2) float32 xy in iBUG order, image pixels, or None when the backend has none;
    keypoints: (5, 2) float32 xy (eyes, nose tip, mouth corners) where the backend gives them;
    weak: scored below the detector's threshold for a new face, kept because the search asked for weaker ones
    (``DetectConfig.weak_score``): it may continue a track, and only a small one starts a tentative track
    (``pipeline.track``).
    """

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    weak: bool = False

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]


@dataclass(frozen=True)
class Frame:
    """One decoded frame. image: (H, W, 3) uint8 RGB (as stored, before any display rotation); deep: the same
    frame at full precision, (H, W, 3) uint16 RGB, for an input of more than 8 bits (None otherwise): what is
    encoded outside the faces, so those pixels are not rounded to 8 bits on the way through."""

    index: int
    pts: int | None
    time_base: Fraction
    image: np.ndarray
    deep: np.ndarray | None = None


@dataclass(frozen=True)
class TrackState:
    """A track as of the current frame. bbox (x1, y1, x2, y2) and landmarks (68, 2) in frame pixels, smoothed."""

    track_id: int
    bbox: tuple[float, float, float, float]
    landmarks: np.ndarray | None
    confirmed: bool
    time_since_update: int


@dataclass(frozen=True)
class FaceCrop:
    """A face ready for DIC.

    box: square crop (x1, y1, x2, y2) in frame pixels; lr: (S, S, 3) uint8 RGB, S the member's input size;
    seed: (68, 2) float32 tracked landmarks in the 128-px crop frame, or None; context: for a multi-frame member,
    (F - 1, S, S, 3) uint8 RGB, the track's previous crops on this crop's grid, latest first
    (``pipeline.frame_context``), or None.
    """

    frame_index: int
    track_id: int
    box: tuple[float, float, float, float]
    lr: np.ndarray
    seed: np.ndarray | None
    context: np.ndarray | None = None


@dataclass(frozen=True)
class EnhancedFace:
    """sr: (O, O, 3) uint8 RGB covering ``box`` (O: the member's output size, 128; 192 for large faces);
    landmarks: (68, 2) float32 decoded by DIC, frame pixels; seed: the crop's tracked landmarks (68, 2) in the 128-px
    crop frame, or None (what temporal fusion aligns by); lr: the (S, S, 3) uint8 RGB crop DIC was given, or None
    (what temporal fusion registers by)."""

    frame_index: int
    track_id: int
    box: tuple[float, float, float, float]
    sr: np.ndarray
    landmarks: np.ndarray
    seed: np.ndarray | None = None
    lr: np.ndarray | None = None
