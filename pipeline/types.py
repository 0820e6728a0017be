"""Plain records passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One face found in one image.

    bbox: (x1, y1, x2, y2) float, image pixels; score: detector confidence (backend-specific scale);
    landmarks: (68, 2) float32 xy in iBUG order, image pixels, or None when the backend has none;
    keypoints: (5, 2) float32 xy (eyes, nose tip, mouth corners) where the backend gives them.
    """

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]
