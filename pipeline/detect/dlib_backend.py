"""dlib: HOG face detector and the 68-point shape predictor (iBUG 300-W layout).

The predictor file ``shape_predictor_68_face_landmarks.dat`` comes from the ``face-recognition-models`` package or
Debian's ``libdlib-data`` (``models.dlib_files``). Its training data (300-W) carries non-commercial terms.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dicface.models.dlib_files import find_dlib_file
from dicface.pipeline.types import Detection

PREDICTOR_NAME = "shape_predictor_68_face_landmarks.dat"
PREDICTOR_ENV = "DICFACE_DLIB_PREDICTOR"


def find_predictor() -> Path:
    """The 68-point predictor file: $DICFACE_DLIB_PREDICTOR, the face_recognition_models package, /usr/share/dlib."""
    return find_dlib_file(PREDICTOR_NAME, PREDICTOR_ENV)


class DlibLandmarker:
    """68 landmarks for given face boxes. Shape: image (H, W, 3) uint8 RGB, boxes (N, 4) -> (N, 68, 2) float32.

    dlib returns whole-pixel points: on a 24-px face one pixel is ~10% of the eye distance. Faces narrower than
    ``work_px`` are therefore measured on an enlarged copy of their neighbourhood and mapped back (sub-pixel).
    """

    def __init__(self, predictor_path: str | os.PathLike[str] | None = None, work_px: int = 128) -> None:
        import dlib

        self._dlib = dlib
        self._predict = dlib.shape_predictor(str(predictor_path or find_predictor()))
        self.work_px = work_px

    def __call__(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        out = np.zeros((len(boxes), 68, 2), np.float32)
        for i, box in enumerate(boxes):
            out[i] = self._one(image, tuple(map(float, box)))
        return out

    def _one(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        x1, y1, x2, y2 = box
        scale = max(1.0, self.work_px / max(x2 - x1, 1.0))
        if scale > 1.0:  # the box and a margin of half its size, enlarged
            m = 0.5 * max(x2 - x1, y2 - y1)
            cx1, cy1 = max(int(x1 - m), 0), max(int(y1 - m), 0)
            cx2, cy2 = min(int(np.ceil(x2 + m)), image.shape[1]), min(int(np.ceil(y2 + m)), image.shape[0])
            size = (round((cx2 - cx1) * scale), round((cy2 - cy1) * scale))
            image = cv2.resize(image[cy1:cy2, cx1:cx2], size, interpolation=cv2.INTER_CUBIC)
            x1, y1, x2, y2 = ((x1 - cx1) * scale, (y1 - cy1) * scale, (x2 - cx1) * scale, (y2 - cy1) * scale)
        else:
            cx1 = cy1 = 0
        rect = self._dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))
        points = np.array([(p.x, p.y) for p in self._predict(image, rect).parts()], np.float32)
        return (points + 0.5) / scale - 0.5 + np.array([cx1, cy1], np.float32)


class DlibDetector:
    """dlib's HOG detector plus 68-point landmarks. Misses faces under ~40 px unless ``upsample`` > 0."""

    def __init__(self, upsample: int = 0, predictor_path: str | os.PathLike[str] | None = None) -> None:
        import dlib

        self.upsample = upsample
        self._detect = dlib.get_frontal_face_detector()
        self._landmarks = DlibLandmarker(predictor_path)

    def __call__(
        self, image: np.ndarray, min_score: float | None = None, max_enlarge: float | None = None
    ) -> list[Detection]:
        """Faces in ``image`` at dlib's own threshold: ``min_score`` is for YuNet's and SCRFD's confidences and is
        not used here (HOG scores are margins); ``max_enlarge`` caps the doublings (``upsample``)."""
        upsample = self.upsample if max_enlarge is None else min(self.upsample, int(math.log2(max(max_enlarge, 1))))
        rects, scores, _ = self._detect.run(image, upsample, 0.0)
        boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        points = self._landmarks(image, boxes)
        return [
            Detection(bbox=tuple(map(float, box)), score=float(score), landmarks=pts)
            for box, score, pts in zip(boxes, scores, points, strict=True)
        ]
