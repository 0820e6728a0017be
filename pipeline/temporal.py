"""Temporal stability of a face video, measured without ground truth (``dicface eval-video``, every ``--report``).

For each pair of consecutive frames and each face tracked in both, in the face's square crop box (the region
dicface pastes into), next to the same for a bicubic upscale of the input:

- **warping error**: optical flow of the *input* (OpenCV DIS on Y, the box grown by half its side for context;
  pixels whose forward and backward flows disagree are dropped as occluded), scaled to the output; the output at
  t-1 is warped onto t along it and the mean |Y| difference taken. Motion the input shows is allowed; what is left
  is change the method made up (flicker). Sub-pixel warping blurs a little, so even a bicubic upscale scores above 0.
- **appearance change**: the output face aligned by a similarity transform from its landmarks onto the track's
  first landmarks (a 64-px face frame), mean |Y| change between consecutive frames.
- **landmark jitter** (no baseline): the track's landmarks minus a smooth fit over time (Savitzky-Golay, 9 frames,
  quadratic), mean point distance in fractions of the face width.

Everything is kept as sums and counts, so the summaries of a split file's parts add up (``merge``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.signal import savgol_filter

from dicface.models.faces import resize_bicubic
from dicface.models.metrics import rgb_to_y
from dicface.pipeline.align import crop_box
from dicface.pipeline.fusion import crop_motion
from dicface.pipeline.types import TrackState

FLOW_CONTEXT = 0.5  # the flow region: the crop box grown by this share of its side on each side
FLOW_MIN_SIDE = 96  # input regions smaller than this are upscaled (bicubic) to it before DIS, which needs texture
# The flow of a large face is computed on its input region reduced to this shorter side (bicubic) and scaled up:
# 2x cheaper for three 60-200-px faces (32 -> 15 ms a frame at x1), their warping errors within 2-4 % of the
# full-resolution flow's (the measures themselves stay on the output's own pixels). Regions up to this side (faces
# of ~50-px landmark extent) are measured exactly as before the limit.
FLOW_MAX_SIDE = 160
ALIGNED = 64  # side of the aligned face frame of the appearance measure, px
JITTER_WINDOW = 9  # frames of the smooth fit of the landmark jitter
MEASURES = ("warp", "warp_bicubic", "appearance", "appearance_bicubic")


@dataclass(frozen=True)
class FaceObservation:
    """A tracked face in one frame. box: the square crop box (x1, y1, x2, y2), input pixels; landmarks: (68, 2)."""

    track_id: int
    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None

    @classmethod
    def of(cls, track: TrackState) -> FaceObservation:
        return cls(track.track_id, crop_box(track), track.landmarks)


@dataclass
class TrackSeries:
    """Per-frame values of one track: ``values[name]`` pairs with ``frames`` (the later frame of each pair)."""

    frames: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEASURES})
    landmarks: list[np.ndarray] = field(default_factory=list)  # (68, 2) per observed frame, for the jitter
    widths: list[float] = field(default_factory=list)
    reference: np.ndarray | None = None  # (68, 2) landmarks in the aligned face frame


@dataclass
class TemporalSummary:
    """Sums and counts of the measures over all face pairs, and the jitter over all tracks."""

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0.0))
    pairs: int = 0
    jitter_sum: float = 0.0
    jitter_points: int = 0

    def mean(self, name: str) -> float | None:
        return self.sums[name] / self.pairs if self.pairs else None

    @property
    def jitter(self) -> float | None:
        return self.jitter_sum / self.jitter_points if self.jitter_points else None

    def merge(self, other: TemporalSummary) -> TemporalSummary:
        return TemporalSummary({m: self.sums[m] + other.sums[m] for m in MEASURES}, self.pairs + other.pairs,
                               self.jitter_sum + other.jitter_sum, self.jitter_points + other.jitter_points)

    def to_dict(self) -> dict[str, float | int | None]:
        means = {m: self.mean(m) for m in MEASURES}
        return {
            "face_pairs": self.pairs,
            "warping_error": _round(means["warp"]),
            "warping_error_bicubic": _round(means["warp_bicubic"]),
            "appearance_change": _round(means["appearance"]),
            "appearance_change_bicubic": _round(means["appearance_bicubic"]),
            "landmark_jitter": _round(self.jitter, 5),
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


_PER_THREAD = threading.local()  # a DIS object is not thread-safe: the streams of a job measure at once


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS optical flow (H, W, 2) from grey image ``a`` to ``b`` (uint8, same size): a(p) ~ b(p + flow(p))."""
    dis = getattr(_PER_THREAD, "dis", None)
    if dis is None:
        dis = _PER_THREAD.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a, b, None)


@functools.lru_cache(maxsize=16)
def _pixel_grid(h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32 (x, y) of every pixel (read-only: shared)."""
    grid = np.mgrid[0:h, 0:w][::-1].transpose(1, 2, 0).astype(np.float32)
    grid.flags.writeable = False
    return grid


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at p + flow(p) (bilinear, edges repeated)."""
    return cv2.remap(image, _pixel_grid(*flow.shape[:2]) + flow, None, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def backward_flow(before: np.ndarray, now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flow from ``now`` back to ``before`` (grey uint8 (H, W)) and the (H, W) bool mask of pixels it is
    trustworthy for: forward and backward flow agree (not occluded) and the source lies inside the image."""
    back, forth = _flow(now, before), _flow(before, now)
    forth_at_source = _warp(forth, back)
    round_trip = back + forth_at_source
    magnitude = (back**2).sum(-1) + (forth_at_source**2).sum(-1)
    valid = (round_trip**2).sum(-1) < 0.01 * magnitude + 0.5
    h, w = back.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    inside = (xs + back[..., 0] >= 0) & (xs + back[..., 0] <= w - 1) & (ys + back[..., 1] >= 0) & (
        ys + back[..., 1] <= h - 1)
    return back, valid & inside


def _similarity(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``crop_motion`` from ``points`` (N, 2) onto ``target``, the identity where it cannot be estimated."""
    m = crop_motion(points, target)
    return m if m is not None else np.float32([[1, 0, 0], [0, 1, 0]])


def reference_shape(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (68, 2) moved and scaled into the aligned face frame (extent 0.6 of ``ALIGNED``, centred)."""
    low, high = landmarks.min(0), landmarks.max(0)
    return (landmarks - (low + high) / 2) * (0.6 * ALIGNED / max(float((high - low).max()), 1.0)) + ALIGNED / 2


def landmark_jitter(series: Sequence[np.ndarray], widths: Sequence[float]) -> tuple[float, int]:
    """Sum and count of |landmarks - smooth fit| / face width over the points of a track's (T, 68, 2) series
    (T >= ``JITTER_WINDOW``; else nothing)."""
    if len(series) < JITTER_WINDOW:
        return 0.0, 0
    points = np.stack(series).astype(np.float64)
    smooth = savgol_filter(points, JITTER_WINDOW, 2, axis=0)
    distance = np.linalg.norm(points - smooth, axis=-1) / np.maximum(np.asarray(widths)[:, None], 1.0)
    return float(distance.sum()), int(distance.size)


@dataclass
class _Frame:
    index: int
    image: np.ndarray  # (H, W, 3) uint8 RGB input
    output: np.ndarray  # (H', W', 3) uint8 RGB
    faces: dict[int, FaceObservation]

    def grey(self, region: tuple[slice, slice]) -> np.ndarray:
        """Y of the input in ``region``, uint8 (only around faces: a whole 1080p frame costs ~20 ms)."""
        return rgb_to_y(self.image[region]).round().astype(np.uint8)


class TemporalMeter:
    """Feed frames in order with ``add``; read ``summary()`` and ``tracks`` (per-track series for plots)."""

    def __init__(self) -> None:
        self.tracks: dict[int, TrackSeries] = {}
        self._summary = TemporalSummary()
        self._previous: _Frame | None = None

    def reset(self) -> None:
        """Forget the previous frame (a scene cut: no pair across it)."""
        self._previous = None

    def add(self, index: int, image: np.ndarray, output: np.ndarray, faces: Sequence[FaceObservation]) -> None:
        """One frame: its input (H, W, 3) uint8 RGB, the method's output (H', W', 3) of any scale, its faces."""
        current = _Frame(index, image, output, {f.track_id: f for f in faces})
        for face in faces:
            series = self.tracks.setdefault(face.track_id, TrackSeries())
            if face.landmarks is not None:
                series.landmarks.append(face.landmarks)
                series.widths.append(float(np.ptp(face.landmarks, axis=0).max()))
                if series.reference is None:
                    series.reference = reference_shape(face.landmarks)
        before = self._previous
        if before is not None and before.index == index - 1:
            for track_id, face in current.faces.items():
                if track_id in before.faces:
                    self._measure_pair(before, current, face, before.faces[track_id])
        self._previous = current

    def summary(self) -> TemporalSummary:
        """The measures so far, with the jitter of every track seen."""
        summary = TemporalSummary(dict(self._summary.sums), self._summary.pairs)
        for series in self.tracks.values():
            total, count = landmark_jitter(series.landmarks, series.widths)
            summary.jitter_sum += total
            summary.jitter_points += count
        return summary

    def _measure_pair(self, before: _Frame, now: _Frame, face: FaceObservation, face_before: FaceObservation
                      ) -> None:
        h, w = now.image.shape[:2]
        scale = now.output.shape[1] / w
        x1, y1, x2, y2 = face.box
        side = x2 - x1
        pad = FLOW_CONTEXT * side
        rx1, ry1 = max(0, int(np.floor(x1 - pad))), max(0, int(np.floor(y1 - pad)))
        rx2, ry2 = min(w, int(np.ceil(x2 + pad))), min(h, int(np.ceil(y2 + pad)))
        if rx2 - rx1 < 8 or ry2 - ry1 < 8:
            return
        ox1, oy1, ox2, oy2 = (round(v * scale) for v in (rx1, ry1, rx2, ry2))
        size = (ox2 - ox1, oy2 - oy1)
        short = min(rx2 - rx1, ry2 - ry1)
        flow_scale = FLOW_MIN_SIDE / short if short < FLOW_MIN_SIDE else min(1.0, FLOW_MAX_SIDE / short)
        flow_size = (round((rx2 - rx1) * flow_scale), round((ry2 - ry1) * flow_scale))
        region = np.s_[ry1:ry2, rx1:rx2]
        input_then, input_now = before.grey(region), now.grey(region)
        grey_then, grey_now = resize_bicubic(input_then, flow_size), resize_bicubic(input_now, flow_size)
        back, valid = backward_flow(grey_then, grey_now)
        back = cv2.resize(back, size, interpolation=cv2.INTER_LINEAR) * np.float32([size[0] / flow_size[0],
                                                                                    size[1] / flow_size[1]])
        valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        # only the crop box itself is scored (the rest was context for the flow)
        inner = np.zeros_like(valid)
        bx1, by1 = max(0, round((x1 - rx1) * scale)), max(0, round((y1 - ry1) * scale))
        inner[by1 : max(by1, round((y2 - ry1) * scale)), bx1 : max(bx1, round((x2 - rx1) * scale))] = True
        valid &= inner
        if not valid.any():
            return
        out_then = rgb_to_y(before.output[oy1:oy2, ox1:ox2]).astype(np.float32)
        out_now = rgb_to_y(now.output[oy1:oy2, ox1:ox2]).astype(np.float32)
        bic_then = resize_bicubic(input_then, size).astype(np.float32)
        bic_now = resize_bicubic(input_now, size).astype(np.float32)
        values = {
            "warp": float(np.abs(out_now - _warp(out_then, back))[valid].mean()),
            "warp_bicubic": float(np.abs(bic_now - _warp(bic_then, back))[valid].mean()),
        }
        series = self.tracks[face.track_id]
        if face.landmarks is None or face_before.landmarks is None or series.reference is None:
            values["appearance"] = values["appearance_bicubic"] = 0.0
        else:
            offset = np.float32([ox1, oy1])
            then_points = (face_before.landmarks + 0.5) * scale - 0.5 - offset
            now_points = (face.landmarks + 0.5) * scale - 0.5 - offset
            m_then, m_now = _similarity(then_points, series.reference), _similarity(now_points, series.reference)

            def change(a: np.ndarray, b: np.ndarray) -> float:
                aligned_a = cv2.warpAffine(a, m_then, (ALIGNED, ALIGNED), flags=cv2.INTER_LINEAR)
                aligned_b = cv2.warpAffine(b, m_now, (ALIGNED, ALIGNED), flags=cv2.INTER_LINEAR)
                return float(np.abs(aligned_b - aligned_a)[8:-8, 8:-8].mean())

            values["appearance"] = change(out_then, out_now)
            values["appearance_bicubic"] = change(bic_then, bic_now)
        series.frames.append(now.index)
        for name, value in values.items():
            series.values[name].append(value)
            self._summary.sums[name] += value
        self._summary.pairs += 1
