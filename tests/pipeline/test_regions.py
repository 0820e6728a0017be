"""Detection scheduling: full frames on schedule, regions around tracked faces in between."""

from __future__ import annotations

import numpy as np
import pytest

from dicface.configs.video import DetectConfig
from dicface.pipeline.detect.regions import (
    ScheduledDetector,
    drop_duplicates,
    fit_region,
    search_region,
    shift_detection,
    zoom_region,
)
from dicface.pipeline.types import Detection


def test_search_region_grows_and_clips() -> None:
    assert search_region((10, 10, 20, 20), 1.0, 100, 100) == (0, 0, 30, 30)
    assert search_region((90, 40, 100, 50), 0.5, 96, 100) == (85, 35, 96, 55)
    assert search_region((200, 200, 210, 210), 1.0, 100, 100) is None


def test_shift_moves_box_landmarks_and_keypoints() -> None:
    det = Detection((1, 2, 3, 4), 0.9, np.zeros((68, 2), np.float32), np.ones((5, 2), np.float32))
    moved = shift_detection(det, 10, 20)
    assert moved.bbox == (11, 22, 13, 24)
    assert np.all(moved.landmarks == [10, 20]) and np.all(moved.keypoints == [11, 21])


def test_a_detection_in_an_enlarged_region_maps_back_to_the_frame() -> None:
    det = Detection((20, 40, 40, 60), 0.9, np.full((68, 2), 30, np.float32), np.full((5, 2), 50, np.float32))
    moved = shift_detection(det, 10, 20, (2.0, 4.0))
    assert moved.bbox == (20, 30, 30, 35)
    assert np.all(moved.landmarks == [25, 27.5]) and np.all(moved.keypoints == [35, 32.5])


def test_a_small_face_region_is_enlarged_to_whole_multiples_and_a_large_one_is_not() -> None:
    region = np.zeros((30, 36, 3), np.uint8)
    zoomed, zoom = zoom_region(region, 10, 32, 2.0)
    assert zoomed.shape == (64, 80, 3) and zoom == (80 / 36, 64 / 30)  # x2 capped, sides rounded up to 16
    assert zoom_region(region, 20, 32, 2.0)[0].shape == (48, 64, 3)  # x1.6
    assert zoom_region(region, 40, 32, 2.0) == (region, (1.0, 1.0))
    assert zoom_region(region, 10, 0, 2.0)[1] == (1.0, 1.0)  # off


class _Bright:
    """A detector that reports the bounding box of the bright pixels of the image it is given."""

    def __call__(
        self, image: np.ndarray, min_score: float | None = None, max_enlarge: float | None = None
    ) -> list[Detection]:
        ys, xs = np.nonzero(image[..., 0] > 127)
        return [Detection((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), 0.9)] if len(xs) else []


def test_a_small_tracked_face_is_searched_enlarged_and_found_where_it_is() -> None:
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[30:40, 40:50] = 255
    detector = ScheduledDetector(_Bright(), DetectConfig(every=3, margin=1.0, region_face_px=32, max_zoom=2))
    request = detector.request(frame, [(41, 31, 51, 41)])
    assert request.images[0].shape[:2] == (64, 64) and request.zooms == [(64 / 30, 64 / 30)]
    (found,) = detector.detect(request)
    assert np.allclose(found.bbox, (40, 30, 50, 40), atol=0.5)


def test_overlapping_regions_report_a_face_once() -> None:
    a, b, c = Detection((0, 0, 10, 10), 0.7), Detection((1, 0, 11, 10), 0.9), Detection((50, 50, 60, 60), 0.8)
    assert drop_duplicates([a, b, c], 0.5) == [b, c]


class _Recorder:
    """A detector that finds one 10-px face at (40, 30) of the frame and records the image sizes it saw."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []
        self.asked: list[float | None] = []  # the min_score of each call
        self.limits: list[float | None] = []  # the max_enlarge of each call
        self.origin = (0, 0)

    def __call__(
        self, image: np.ndarray, min_score: float | None = None, max_enlarge: float | None = None
    ) -> list[Detection]:
        self.shapes.append(image.shape[:2])
        self.asked.append(min_score)
        self.limits.append(max_enlarge)
        x0, y0 = self.origin
        if not (x0 <= 40 and y0 <= 30 and x0 + image.shape[1] >= 50 and y0 + image.shape[0] >= 40):
            return []
        return [Detection((40 - x0, 30 - y0, 50 - x0, 40 - y0), 0.9)]


def test_full_frames_on_schedule_regions_in_between() -> None:
    recorder = _Recorder()
    detector = ScheduledDetector(recorder, DetectConfig(every=3, margin=1.0, region_face_px=0))
    frame = np.zeros((100, 120, 3), np.uint8)
    assert detector(0, frame, [])[0].bbox == (40, 30, 50, 40)
    assert recorder.shapes == [(100, 120)] and recorder.asked == [0.4]  # weak detections kept
    assert detector(1, frame, []) == []  # nothing tracked: nothing to look at
    recorder.origin = (30, 20)  # the region of the tracked box below starts there
    found = detector(2, frame, [(40, 30, 50, 40)])
    assert recorder.shapes[-1] == (30, 30)
    assert [d.bbox for d in found] == [(40, 30, 50, 40)]  # back in frame pixels
    recorder.origin = (0, 0)
    detector(3, frame, [(40, 30, 50, 40)])
    assert recorder.shapes[-1] == (100, 120)


def test_only_regions_around_large_faces_are_searched_without_the_detectors_enlargement() -> None:
    recorder = _Recorder()
    frame = np.zeros((400, 600, 3), np.uint8)
    detector = ScheduledDetector(recorder, DetectConfig(every=10, large_face_px=48))
    detector(0, frame, [])
    detector(1, frame, [(40, 30, 50, 40), (100, 100, 160, 170), (300, 100, 347, 150)])
    assert recorder.limits == [None, None, 1.0, None]  # the full frame, the 10-, 60- and 47-px faces
    assert detector.request(frame, [], extra=[(0, 0, 200, 200)]).max_enlarge == [None]  # the gate's changed areas
    off = ScheduledDetector(recorder, DetectConfig(large_face_px=None))
    assert off.request(frame, [(100, 100, 160, 170)]).max_enlarge == [None]


def test_regions_at_the_right_or_bottom_edge_grow_inwards_to_whole_multiples() -> None:
    assert fit_region((30, 20, 60, 50), 120, 100) == (30, 20, 60, 50)  # inside the frame: as it is
    assert fit_region((424, 8, 480, 112), 480, 270) == (416, 8, 480, 112)  # at the right edge: 64 px wide
    assert fit_region((10, 250, 50, 270), 480, 270) == (10, 238, 50, 270)  # at the bottom: 32 px high
    assert fit_region((0, 0, 20, 20), 20, 270) == (0, 0, 20, 20)  # never past the frame


def test_invalid_schedule() -> None:
    with pytest.raises(ValueError):
        DetectConfig(every=0)
    with pytest.raises(ValueError, match="large_face_px"):
        DetectConfig(large_face_px=0)
