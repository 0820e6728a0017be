"""Detectors on real faces: small faces (20-36 px) in a frame, as DIC sees them in video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dicface.models.faces import resize_bicubic
from dicface.pipeline.detect.dlib_backend import DlibDetector, DlibLandmarker
from dicface.pipeline.detect.yunet import YUNET_MODEL, YuNetDetector

SHARED_TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
FACE_WIDTHS = ((60, 28), (300, 36), (500, 20))  # (x, width): the astronaut's face at three small sizes


@pytest.fixture(scope="module")
def small_faces_frame() -> np.ndarray:
    """(360, 640, 3) uint8 RGB: grey frame with three real faces 20-36 px wide at y = 150."""
    from skimage import data

    face = np.ascontiguousarray(data.astronaut()[40:220, 150:300])
    frame = np.full((360, 640, 3), 90, np.uint8)
    for x, w in FACE_WIDTHS:
        small = resize_bicubic(face, (w, int(w * 180 / 150)))
        frame[150 : 150 + small.shape[0], x : x + small.shape[1]] = small
    return frame


def _found(detections: list, frame_x: int, width: int) -> bool:
    return any(abs((d.bbox[0] + d.bbox[2]) / 2 - (frame_x + width / 2)) < width / 2 for d in detections)


def test_yunet_finds_every_small_face_at_x2(small_faces_frame: np.ndarray) -> None:
    detections = YuNetDetector(upscale=2.0, landmarker=DlibLandmarker())(small_faces_frame)
    assert all(_found(detections, x, w) for x, w in FACE_WIDTHS)
    assert len(detections) == 3
    for d in detections:
        assert d.landmarks.shape == (68, 2) and d.keypoints.shape == (5, 2)
        x1, y1, x2, y2 = d.bbox
        assert x1 - 5 < d.keypoints[:, 0].mean() < x2 + 5 and y1 - 5 < d.keypoints[:, 1].mean() < y2 + 5


def test_yunet_keeps_weak_detections_only_when_asked(small_faces_frame: np.ndarray) -> None:
    detector = YuNetDetector(upscale=1.0, score_threshold=0.6)
    strict, lenient = detector(small_faces_frame), detector(small_faces_frame, min_score=0.05)
    assert all(not d.weak and d.score >= 0.6 for d in strict)
    assert len(lenient) > len(strict)  # at x1 some of the small faces score under 0.6
    assert all(d.weak == (d.score < 0.6) for d in lenient)
    assert len(detector(small_faces_frame)) == len(strict)  # the lower threshold was for that call only


def test_a_large_face_is_found_alike_without_the_enlargement() -> None:
    """The astronaut's 90-px head in a 300x300 region, as the search around a tracked large face sees it: at x1
    (max_enlarge 1) the same face at a quarter of the pixels searched, its box within 6 px and its 68 landmarks
    (dlib on the region itself, seeded by the box) within half a pixel on average."""
    from skimage import data

    region = np.ascontiguousarray(data.astronaut()[0:300, 90:390])
    detector = YuNetDetector(upscale=2.0, landmarker=DlibLandmarker())
    (at_x2,), (at_x1,) = detector(region), detector(region, max_enlarge=1.0)
    assert np.abs(np.subtract(at_x2.bbox, at_x1.bbox)).max() < 6 and at_x1.score > 0.6
    assert np.abs(at_x2.landmarks - at_x1.landmarks).mean() < 0.5


def test_native_size_misses_the_smallest(small_faces_frame: np.ndarray) -> None:
    assert len(YuNetDetector(upscale=1.0)(small_faces_frame)) < 3  # why the default enlarges the frame


def test_dlib_hog_misses_small_faces(small_faces_frame: np.ndarray) -> None:
    assert len(DlibDetector(upsample=0)(small_faces_frame)) == 0  # DESIGN §4: not a usable default


def test_shipped_yunet_is_the_mit_model() -> None:
    from dicface.models.checkpoints import sha256_file

    assert sha256_file(YUNET_MODEL) == "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
    assert "MIT License" in (YUNET_MODEL.parent / "LICENSE-yunet.txt").read_text()


@pytest.mark.parametrize("name", ["scrfd_2.5g_kps.onnx", "scrfd_500m_bnkps.onnx"])
def test_insightface_scrfd_backend(small_faces_frame: np.ndarray, name: str) -> None:
    from dicface.pipeline.detect.insightface_backend import InsightFaceDetector

    path = SHARED_TESTDATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present (test-only detector model)")
    detections = InsightFaceDetector(path, landmarker=DlibLandmarker())(small_faces_frame)
    assert _found(detections, 300, 36)  # the 36-px face; SCRFD misses the 20- and 28-px faces of this frame
    d = next(d for d in detections if _found([d], 300, 36))
    assert d.landmarks.shape == (68, 2) and d.keypoints.shape == (5, 2) and 0 < d.score <= 1


def test_insightface_refuses_a_non_detector(tmp_path: Path) -> None:
    from dicface.models.errors import InputError
    from dicface.pipeline.detect.insightface_backend import InsightFaceDetector

    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not onnx")
    with pytest.raises(InputError):
        InsightFaceDetector(bogus)
