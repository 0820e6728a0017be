"""Which detector to build, as a plain value: the CLI builds one in-process, a Ray actor builds its own copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from dicface.configs.schema import DETECTORS
from dicface.models.errors import InputError
from dicface.pipeline.types import Detection


class FaceDetector(Protocol):
    """Faces in an (H, W, 3) uint8 RGB image, in its pixels. ``min_score``: keep detections down to this score,
    those below the detector's own threshold flagged ``weak`` (None: its own threshold; a backend whose scores are
    not confidences ignores it)."""

    def __call__(self, image: np.ndarray, min_score: float | None = None) -> list[Detection]: ...


@dataclass(frozen=True)
class DetectorSpec:
    """``scale``: enlarge frames by this before detection (None: 2 for yunet, 1 for insightface);
    ``model``: the insightface detector ONNX (SCRFD), required for that backend; ``landmarks``: measure the 68
    points of each face (dlib, about 2.5 ms a face), else boxes and 5 keypoints only."""

    kind: str = "yunet"
    scale: float | None = None
    model: Path | None = None
    landmarks: bool = True

    def __post_init__(self) -> None:
        if self.kind not in DETECTORS:
            raise InputError(f"detector must be one of {DETECTORS}, got {self.kind!r}")
        if self.scale is not None and not 0.25 <= self.scale <= 8:
            raise InputError(f"--detect-scale must be between 0.25 and 8, got {self.scale}")
        if self.kind == "insightface" and self.model is None:
            raise InputError("--detector insightface needs --detector-model SCRFD.onnx (insightface ships none)")

    def build(self) -> FaceDetector:
        from dicface.pipeline.detect.dlib_backend import DlibDetector, DlibLandmarker

        landmarker = DlibLandmarker() if self.landmarks else None
        if self.kind == "yunet":
            from dicface.pipeline.detect.yunet import YuNetDetector

            return YuNetDetector(upscale=self.scale or 2.0, landmarker=landmarker)
        if self.kind == "insightface":
            from dicface.pipeline.detect.insightface_backend import InsightFaceDetector

            return InsightFaceDetector(self.model, upscale=self.scale or 1.0, landmarker=landmarker)
        return DlibDetector(upsample=1)
