"""Scene cuts: a cheap test on a small grey thumbnail of each frame.

A cut is a frame whose 64x36 grey thumbnail differs from the previous frame's by more than ``threshold`` Y levels
on average *and* whose grey histogram moved by more than ``histogram`` (Bhattacharyya distance): a fast pan or a
flash changes one of the two, a new shot both. At a cut the tracker drops its tracks (their boxes and landmark
filters belong to the last shot), and with them temporal fusion's carried faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

THUMBNAIL = (64, 36)


@dataclass(frozen=True)
class CutConfig:
    threshold: float = 30.0  # mean |thumbnail difference|, grey levels
    histogram: float = 0.3  # Bhattacharyya distance of the 32-bin grey histograms

    def __post_init__(self) -> None:
        if self.threshold <= 0 or not 0 < self.histogram <= 1:
            raise ValueError(f"invalid scene-cut configuration: {self}")


class CutDetector:
    """Stateful: call once per frame, in order; True where a new shot starts (never on the first frame)."""

    def __init__(self, cfg: CutConfig = CutConfig()) -> None:
        self.cfg = cfg
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, image: np.ndarray) -> bool:
        """image: (H, W, 3) uint8 RGB."""
        grey = cv2.cvtColor(cv2.resize(image, THUMBNAIL, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        hist = cv2.calcHist([grey], [0], None, [32], [0, 256])
        cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
        previous, self._previous = self._previous, (grey, hist)
        if previous is None:
            return False
        difference = float(np.abs(grey.astype(np.int16) - previous[0]).mean())
        distance = cv2.compareHist(hist, previous[1], cv2.HISTCMP_BHATTACHARYYA)
        return difference > self.cfg.threshold and distance > self.cfg.histogram
