"""YuNet (OpenCV Zoo, MIT) through ``cv2.FaceDetectorYN``: the embedded default detector.

Small faces are DIC's target and YuNet misses some below ~30 px at native size, so the frame is enlarged by
``upscale`` before detection (measured, DESIGN §4: 3/3 faces of ~28 px found at x2, 2/3 at x1). YuNet gives a
box and 5 keypoints; 68 landmarks come from an optional landmarker (dlib's predictor by default).

A search may ask for a lower ``min_score``: YuNet scores the smallest faces low and unevenly from frame to frame
(a 26-px head of the held-out photo in a crf-26 clip searched at x2: 0.6 or more in 38 % of the frames, 0.4 or
more in 75 %).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dicface.models.errors import InputNotFound
from dicface.pipeline.detect.dlib_backend import DlibLandmarker
from dicface.pipeline.types import Detection

YUNET_MODEL = Path(__file__).resolve().parent / "weights" / "face_detection_yunet_2026may.onnx"
# The enlarged frame is capped at this many pixels (4096 x 4096): a 4K frame is searched at x1, not x2, and an
# 8K frame is shrunk, so time and memory stay bounded (uncapped, a 4000x2250 video ran at 2.3 s per frame).
MAX_DETECT_PIXELS = 4096 * 4096


class YuNetDetector:
    """Faces in (H, W, 3) uint8 RGB images, boxes and landmarks in the image's pixels."""

    def __init__(
        self,
        upscale: float = 2.0,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        landmarker: DlibLandmarker | None = None,
        model_path: str | os.PathLike[str] = YUNET_MODEL,
    ) -> None:
        if not Path(model_path).is_file():
            raise InputNotFound(f"{model_path}: YuNet model not found")
        self.upscale = upscale
        self.score_threshold = score_threshold
        self.landmarker = landmarker
        log = cv2.utils.logging
        level = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_ERROR)  # OpenCV 5 warns on every load that its graph engine ignores targets
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold, nms_threshold,
                                                  top_k)
        finally:
            log.setLogLevel(level)

    def __call__(
        self, image: np.ndarray, min_score: float | None = None, max_enlarge: float | None = None
    ) -> list[Detection]:
        """Faces in ``image``, down to ``min_score`` (default and at most ``score_threshold``; those below the
        threshold come back ``weak``), the image enlarged by ``upscale`` or ``max_enlarge`` if that is less."""
        h, w = image.shape[:2]
        threshold = self.score_threshold if min_score is None else min(min_score, self.score_threshold)
        self._net.setScoreThreshold(threshold)
        upscale = min(self.upscale, max_enlarge or self.upscale, (MAX_DETECT_PIXELS / (w * h)) ** 0.5)
        size = (max(1, round(w * upscale)), max(1, round(h * upscale)))
        interpolation = cv2.INTER_AREA if upscale < 1 else cv2.INTER_LINEAR
        scaled = image if size == (w, h) else cv2.resize(image, size, interpolation=interpolation)
        sx, sy = size[0] / w, size[1] / h
        self._net.setInputSize(size)
        _, faces = self._net.detect(cv2.cvtColor(scaled, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        faces = faces.astype(np.float64)
        x, bw = faces[:, 0] / sx, faces[:, 2] / sx
        y, bh = faces[:, 1] / sy, faces[:, 3] / sy
        boxes = np.stack([x, y, x + bw, y + bh], axis=1)
        keypoints = (faces[:, 4:14].reshape(-1, 5, 2) / (sx, sy)).astype(np.float32)
        points = self.landmarker(image, boxes) if self.landmarker is not None else [None] * len(boxes)
        return [
            Detection(bbox=tuple(map(float, box)), score=float(score), landmarks=pts, keypoints=kps,
                      weak=bool(score < self.score_threshold))
            for box, score, pts, kps in zip(boxes, faces[:, 14], points, keypoints, strict=True)
        ]
