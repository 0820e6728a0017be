"""insightface: a user-supplied SCRFD detector ONNX (``insightface.model_zoo``), loaded offline.

insightface ships no models and its model zoo's files carry non-commercial terms: the user passes the file. The
detector input size (``det_size``) is set explicitly: the frame (times ``upscale``) rounded up to a multiple of 32.
SCRFD gives a box and 5 keypoints; 68 landmarks come from an optional landmarker (dlib's by default in the CLI).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from dicface.models.errors import InputError, InputNotFound
from dicface.models.extras import require
from dicface.pipeline.detect.dlib_backend import DlibLandmarker
from dicface.pipeline.types import Detection


class InsightFaceDetector:
    """Faces in (H, W, 3) uint8 RGB images, boxes and landmarks in the image's pixels."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        upscale: float = 1.0,
        score_threshold: float = 0.5,
        landmarker: DlibLandmarker | None = None,
    ) -> None:
        model_zoo = require("insightface.model_zoo", "insightface", "the insightface detector")
        path = Path(model_path)
        if not path.is_file():
            raise InputNotFound(f"{path}: insightface detector model not found")
        try:
            self._model = model_zoo.get_model(str(path))
        except Exception as exc:  # onnxruntime and insightface raise many types
            raise InputError(f"{path}: not an insightface detector ({type(exc).__name__}: {exc})") from exc
        if self._model is None or not hasattr(self._model, "detect"):
            raise InputError(f"{path}: not an insightface face detector (SCRFD/RetinaFace ONNX expected)")
        self.upscale = upscale
        self.score_threshold = score_threshold
        self.landmarker = landmarker
        self._size: tuple[int, int] | None = None

    def __call__(
        self, image: np.ndarray, min_score: float | None = None, max_enlarge: float | None = None
    ) -> list[Detection]:
        """Faces in ``image``, down to ``min_score`` (default and at most ``score_threshold``; those below the
        threshold come back ``weak``), the image enlarged by ``upscale`` or ``max_enlarge`` if that is less."""
        upscale = min(self.upscale, max_enlarge or self.upscale)
        scaled = cv2.resize(image, None, fx=upscale, fy=upscale) if upscale != 1 else image
        size = (math.ceil(scaled.shape[1] / 32) * 32, math.ceil(scaled.shape[0] / 32) * 32)
        if size != self._size:
            self._model.prepare(ctx_id=-1, det_size=size, det_thresh=self.score_threshold)
            self._size = size
        self._model.det_thresh = self.score_threshold if min_score is None else min(min_score, self.score_threshold)
        boxes, keypoints = self._model.detect(cv2.cvtColor(scaled, cv2.COLOR_RGB2BGR), input_size=size)
        if boxes is None or len(boxes) == 0:
            return []
        boxes = boxes.astype(np.float64)
        boxes[:, :4] /= upscale
        kps = [None] * len(boxes) if keypoints is None else (keypoints / upscale).astype(np.float32)
        points = self.landmarker(image, boxes[:, :4]) if self.landmarker is not None else [None] * len(boxes)
        return [
            Detection(bbox=tuple(map(float, b[:4])), score=float(b[4]), landmarks=p, keypoints=k,
                      weak=bool(b[4] < self.score_threshold))
            for b, p, k in zip(boxes, points, kps, strict=True)
        ]
