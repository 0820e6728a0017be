"""Detection scheduling: the whole frame every N frames, only around the tracked faces in between.

A full-frame pass on a frame enlarged for small faces is the most expensive stage of the video path (about
130 ms for a 1280x720 frame at x2 on 2 cores); a region around a known face costs a few milliseconds. New faces are
found at the next full-frame pass (``every`` frames), known faces are measured on every frame, so the tracker
keeps real landmarks instead of coasting on its prediction. Detections are kept down to ``weak_score``, below the
detector's threshold: they continue tracks, and small ones may start tentative ones (``pipeline.track``). A region
around a face narrower than ``region_face_px`` is enlarged before the detector sees it (on top of the detector's
own enlargement), so the smallest faces are measured where the detector scores them well: a 20-px head, YuNet
score at x2 0.14-0.56 over a clip's first 10 frames, scores 0.73-0.88 at x4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from dicface.configs.video import DetectConfig
from dicface.pipeline.boxes import iou_matrix
from dicface.pipeline.detect.spec import FaceDetector
from dicface.pipeline.types import Detection

Box = tuple[float, float, float, float]
Region = tuple[int, int, int, int]
Zoom = tuple[float, float]  # how much a searched image was enlarged from the frame, x and y


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


def shift_detection(det: Detection, dx: float, dy: float, zoom: Zoom = (1.0, 1.0)) -> Detection:
    """A detection made in a region whose top-left corner is (dx, dy), in frame pixels, and which was enlarged by
    ``zoom`` (x, y) before detection. Points are scaled as the box corners are (p / zoom): mapping them as pixel
    centres, (p + 0.5) / zoom - 0.5, measured 0.01-0.04 dB less in most size bins of both ``bench quality`` clip
    sets."""
    offset, scale = np.array([dx, dy], np.float32), np.array(zoom, np.float32)
    x1, y1, x2, y2 = det.bbox
    return replace(
        det,
        bbox=(x1 / zoom[0] + dx, y1 / zoom[1] + dy, x2 / zoom[0] + dx, y2 / zoom[1] + dy),
        landmarks=None if det.landmarks is None else det.landmarks / scale + offset,
        keypoints=None if det.keypoints is None else det.keypoints / scale + offset,
    )


ZOOM_MULTIPLE = 16  # an enlarged region's sides: multiples of this, so no detector pads them at x2


def zoom_region(image: np.ndarray, face_width: float, face_px: float, max_zoom: float) -> tuple[np.ndarray, Zoom]:
    """``image`` (a region around a face ``face_width`` px wide) enlarged so the face is about ``face_px`` wide,
    by at most ``max_zoom``, its sides rounded up to multiples of ``ZOOM_MULTIPLE``; and the zoom (x, y) applied
    (1, 1: left as it is). Shape: image (h, w, 3) -> (h', w', 3)."""
    zoom = min(face_px / max(face_width, 1.0), max_zoom)
    if zoom <= 1:
        return image, (1.0, 1.0)
    h, w = image.shape[:2]
    size = (-(-round(w * zoom) // ZOOM_MULTIPLE) * ZOOM_MULTIPLE, -(-round(h * zoom) // ZOOM_MULTIPLE) * ZOOM_MULTIPLE)
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), (size[0] / w, size[1] / h)


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

    images: (h, w, 3) uint8 RGB each; offsets: each image's top-left corner (x, y) in the frame; zooms: how much
    each image was enlarged from the frame (x, y); min_score: detections kept down to this score (None: the
    detector's threshold); max_enlarge: per image, the most the detector may enlarge it (None: its own setting;
    1 for the regions around large faces); empty: None for every image.
    """

    images: list[np.ndarray]
    offsets: list[tuple[int, int]]
    zooms: list[Zoom]
    full: bool
    min_score: float | None = None
    max_enlarge: list[float | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def search(self, detector: FaceDetector) -> list[list[Detection]]:
        """Each image's detections by ``detector``."""
        limits = self.max_enlarge or [None] * len(self.images)
        return [detector(image, self.min_score, limit) for image, limit in zip(self.images, limits, strict=True)]


class DetectPlan:
    """What to search in each frame under a ``DetectConfig``, and the frame's detections from the detector's
    answers. A runtime can run the detector elsewhere (an actor pool) between ``request`` and ``combine``."""

    def __init__(self, cfg: DetectConfig) -> None:
        self.cfg = cfg

    def is_full(self, index: int) -> bool:
        return index % self.cfg.every == 0

    def full_request(self, image: np.ndarray) -> DetectRequest:
        """Search the whole frame. Shape: image (H, W, 3) uint8 RGB."""
        return DetectRequest([image], [(0, 0)], [(1.0, 1.0)], full=True, min_score=self.cfg.weak_score)

    def request(self, image: np.ndarray, tracked: Sequence[Box], extra: Sequence[Region] = ()) -> DetectRequest:
        """Search the regions around the ``tracked`` boxes (the tracks' latest boxes, frame pixels) and the
        ``extra`` regions (x1, y1, x2, y2). Shape: image (H, W, 3) uint8 RGB."""
        height, width = image.shape[:2]
        cfg = self.cfg
        searches = [(search_region(box, cfg.margin, width, height), box[2] - box[0]) for box in tracked]
        images, offsets, zooms, limits = [], [], [], []
        for region, face_width in (*searches, *((r, None) for r in extra)):
            if region is None:
                continue
            x1, y1, x2, y2 = fit_region(region, width, height)
            large = face_width is not None and cfg.large_face_px is not None and face_width >= cfg.large_face_px
            known = float("inf") if face_width is None else face_width
            zoomed, zoom = zoom_region(image[y1:y2, x1:x2], known, cfg.region_face_px, cfg.max_zoom)
            images.append(np.ascontiguousarray(zoomed))
            offsets.append((x1, y1))
            zooms.append(zoom)
            limits.append(1.0 if large else None)
        return DetectRequest(images, offsets, zooms, full=False, min_score=cfg.weak_score, max_enlarge=limits)

    def combine(self, request: DetectRequest, found: Sequence[list[Detection]]) -> list[Detection]:
        """The frame's detections from the detector's answer for each image of ``request``."""
        if request.full:
            return list(found[0])
        shifted = [shift_detection(d, x, y, zoom)
                   for (x, y), zoom, dets in zip(request.offsets, request.zooms, found, strict=True) for d in dets]
        return drop_duplicates(shifted, self.cfg.duplicate_iou)


class ScheduledDetector(DetectPlan):
    """A ``DetectPlan`` with its frame detector (image -> detections), run in this process."""

    def __init__(self, detector: FaceDetector, cfg: DetectConfig) -> None:
        super().__init__(cfg)
        self.detector = detector

    def __call__(self, index: int, image: np.ndarray, tracked: Sequence[Box]) -> list[Detection]:
        """Detections in frame ``index``: the whole frame on schedule, else around the ``tracked`` boxes."""
        request = self.full_request(image) if self.is_full(index) else self.request(image, tracked)
        return self.detect(request)

    def detect(self, request: DetectRequest) -> list[Detection]:
        return self.combine(request, request.search(self.detector))
