"""Detection scheduling: the whole frame every N frames, only around the tracked faces in between.

A full-frame pass on a frame enlarged for small faces is the most expensive stage of the video path (about
130 ms for a 1280x720 frame at x2 on 2 cores); a region around a known face costs a few milliseconds. New faces are
found at the next full-frame pass (``every`` frames), known faces are measured on every frame, so the tracker
keeps real landmarks instead of coasting on its prediction. Detections are kept down to ``weak_score``, below the
detector's threshold: they continue tracks, and small ones may start tentative ones (``pipeline.track``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from configs.video import DetectSchedule
from pipeline.boxes import iou_matrix
from pipeline.detect.spec import FaceDetector
from pipeline.types import Detection

Box = tuple[float, float, float, float]
Region = tuple[int, int, int, int]


def search_region(box: Box, margin: float, width: int, height: int) -> Region | None:
    """The integer region (x1, y1, x2, y2) around ``box`` grown by ``margin`` per side, clipped to the frame;
    None when nothing of it is inside the frame."""
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    rx1, ry1 = max(int(np.floor(x1 - mx)), 0), max(int(np.floor(y1 - my)), 0)
    rx2, ry2 = min(int(np.ceil(x2 + mx)), width), min(int(np.ceil(y2 + my)), height)
    return (rx1, ry1, rx2, ry2) if rx2 - rx1 >= 2 and ry2 - ry1 >= 2 else None


PAD_MULTIPLE = 32  # YuNet pads its input on the right and at the bottom to multiples of this (frame pixels here)


def fit_region(region: Region, width: int, height: int, multiple: int = PAD_MULTIPLE) -> Region:
    """``region`` grown left (up) to a side that is a multiple of ``multiple`` when it ends at the frame's right
    (bottom) edge. YuNet pads its input on the right and at the bottom with black: a face cut by the frame's edge
    next to that padding was missed (a face entering at the right edge, searched in a 56-px-wide region); grown,
    the region needs no padding on that side and the face is found as in the whole frame. Other regions are left
    as they are: the detector's answer on the smallest faces moves with any change of the crop."""
    x1, y1, x2, y2 = region
    if x2 == width:
        x1 = max(0, x2 - -(-(x2 - x1) // multiple) * multiple)
    if y2 == height:
        y1 = max(0, y2 - -(-(y2 - y1) // multiple) * multiple)
    return x1, y1, x2, y2


def shift_detection(det: Detection, dx: float, dy: float) -> Detection:
    """A detection made in a region whose top-left corner is (dx, dy), in frame pixels."""
    offset = np.array([dx, dy], np.float32)
    x1, y1, x2, y2 = det.bbox
    return replace(
        det,
        bbox=(x1 + dx, y1 + dy, x2 + dx, y2 + dy),
        landmarks=None if det.landmarks is None else det.landmarks + offset,
        keypoints=None if det.keypoints is None else det.keypoints + offset,
    )


def drop_duplicates(detections: list[Detection], iou: float) -> list[Detection]:
    """Greedy non-maximum suppression by score."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if not kept or iou_matrix(np.array([det.bbox]), np.array([k.bbox for k in kept])).max() < iou:
            kept.append(det)
    return kept


@dataclass(frozen=True)
class DetectRequest:
    """What to search in one frame: the whole frame, or the regions around the tracked faces.

    images: (h, w, 3) uint8 RGB each; offsets: each image's top-left corner (x, y) in the frame; min_score:
    detections kept down to this score (None: the detector's threshold).
    """

    images: list[np.ndarray]
    offsets: list[tuple[int, int]]
    full: bool
    min_score: float | None = None

    def __len__(self) -> int:
        return len(self.images)

    def search(self, detector: FaceDetector) -> list[list[Detection]]:
        """Each image's detections by ``detector``."""
        return [detector(image, self.min_score) for image in self.images]


class DetectPlan:
    """What to search in each frame under a ``DetectSchedule``, and the frame's detections from the detector's
    answers. A runtime can run the detector elsewhere (an actor pool) between ``request`` and ``combine``."""

    def __init__(self, schedule: DetectSchedule) -> None:
        self.schedule = schedule

    def is_full(self, index: int) -> bool:
        return index % self.schedule.every == 0

    def full_request(self, image: np.ndarray) -> DetectRequest:
        """Search the whole frame. Shape: image (H, W, 3) uint8 RGB."""
        return DetectRequest([image], [(0, 0)], full=True, min_score=self.schedule.weak_score)

    def request(self, image: np.ndarray, tracked: Sequence[Box], extra: Sequence[Region] = ()) -> DetectRequest:
        """Search the regions around the ``tracked`` boxes (the tracks' latest boxes, frame pixels) and the
        ``extra`` regions (x1, y1, x2, y2). Shape: image (H, W, 3) uint8 RGB."""
        height, width = image.shape[:2]
        regions = [search_region(box, self.schedule.margin, width, height) for box in tracked]
        images, offsets = [], []
        for x1, y1, x2, y2 in (fit_region(r, width, height) for r in (*regions, *extra) if r is not None):
            images.append(np.ascontiguousarray(image[y1:y2, x1:x2]))
            offsets.append((x1, y1))
        return DetectRequest(images, offsets, full=False, min_score=self.schedule.weak_score)

    def combine(self, request: DetectRequest, found: Sequence[list[Detection]]) -> list[Detection]:
        """The frame's detections from the detector's answer for each image of ``request``."""
        if request.full:
            return list(found[0])
        shifted = [shift_detection(d, x, y) for (x, y), dets in zip(request.offsets, found, strict=True) for d in dets]
        return drop_duplicates(shifted, self.schedule.duplicate_iou)


class ScheduledDetector(DetectPlan):
    """A ``DetectPlan`` with its frame detector (image -> detections), run in this process."""

    def __init__(self, detector: FaceDetector, schedule: DetectSchedule) -> None:
        super().__init__(schedule)
        self.detector = detector

    def __call__(self, index: int, image: np.ndarray, tracked: Sequence[Box]) -> list[Detection]:
        """Detections in frame ``index``: the whole frame on schedule, else around the ``tracked`` boxes."""
        request = self.full_request(image) if self.is_full(index) else self.request(image, tracked)
        return self.detect(request)

    def detect(self, request: DetectRequest) -> list[Detection]:
        return self.combine(request, request.search(self.detector))
