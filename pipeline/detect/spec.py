"""The detectors' interface, and the one named by a run's ``detect`` section."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from dicface.configs.video import DetectConfig
from dicface.pipeline.types import Detection


class FaceDetector(Protocol):
    """Faces in an (H, W, 3) uint8 RGB image, in its pixels. ``min_score``: keep detections down to this score,
    those below the detector's own threshold flagged ``weak`` (None: its own threshold; a backend whose scores are
    not confidences ignores it). ``max_enlarge``: enlarge the image by at most this before detection (None: the
    detector's own setting, which favours small faces; a caller that knows the image's faces are large passes 1)."""

    def __call__(
        self, image: np.ndarray, min_score: float | None = None, max_enlarge: float | None = None
    ) -> list[Detection]: ...


def build_detector(cfg: DetectConfig, landmarks: bool = True) -> FaceDetector:
    """The detector ``cfg`` names (each process builds its own: a Ray actor builds it where it runs);
    ``landmarks``: measure the 68 points of each face (dlib, about 2.5 ms a face), else boxes and 5 keypoints."""
    from dicface.pipeline.detect.dlib_backend import DlibDetector, DlibLandmarker

    landmarker = DlibLandmarker() if landmarks else None
    if cfg.detector == "yunet":
        from dicface.pipeline.detect.yunet import YuNetDetector

        return YuNetDetector(upscale=cfg.scale or 2.0, landmarker=landmarker)
    if cfg.detector == "insightface":
        from dicface.pipeline.detect.insightface_backend import InsightFaceDetector

        return InsightFaceDetector(Path(cfg.model), upscale=cfg.scale or 1.0, landmarker=landmarker)
    return DlibDetector(upsample=1)
