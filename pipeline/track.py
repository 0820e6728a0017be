"""Causal multi-face tracking with Kalman-smoothed boxes and 68 landmarks.

Each frame's detections are matched to the tracks' predicted boxes by IoU (Hungarian assignment). A track is
confirmed after ``min_hits`` consecutive matches and deleted after ``max_age`` frames without one; on frames
without detection (``update(None)``, the ``--detect-every`` gaps) tracks coast on their prediction.

``weak`` detections (scored below the detector's threshold for a new face) continue tracks. A weak one narrower
than ``weak_birth_px`` -- a small face, which the detector scores low because it is small -- may start a tentative
track, which is confirmed only once a detection at the full threshold joins it and is dropped at its first miss
before that; a wider weak one starts nothing (on real scenery YuNet's weak detections are mostly 200-300-px boxes
of no face). No detection lying mostly (half its box) inside a tracked face's box starts a track: the region
searched around one small face, enlarged, also shows the part of a neighbour that its edge cuts, and YuNet scored
such a 7-px-wide half face 0.8 (a track of its own, which then grew over the neighbour). Measured on the held-out
faces of ``dicface bench quality`` (crf 26): a 26-px head is tracked from frame 1 instead of frame 11.

Two constant-velocity Kalman filters per track, with measurement noise proportional to the face's width (a 20-px
face's landmarks are noisier in pixels than a 200-px face's):
- the box ``(cx, cy, w, h)``: a filterpy ``KalmanFilter``;
- the 68 landmarks: 136 coordinates with identical dynamics and noise share one covariance, so one 2-state
  filter (position, velocity) is run on all of them at once -- exact, and 136x cheaper than a 272-state filter.
Landmarks decoded from DIC's output can be fed back (``refine``) as a second, more precise measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

from dicface.configs.video import TrackConfig
from dicface.pipeline.boxes import covered_fraction, iou_matrix
from dicface.pipeline.types import Detection, TrackState

if TYPE_CHECKING:  # filterpy imports scipy.stats (~0.7 s): loaded when a tracker first needs it, not by the CLI
    from filterpy.kalman import KalmanFilter


def _cv_matrices(q: float) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity transition and process noise (white acceleration, std q) for one coordinate."""
    f = np.array([[1.0, 1.0], [0.0, 1.0]])
    g = np.array([[0.5], [1.0]])
    return f, q * q * (g @ g.T)


class LandmarkFilter:
    """One constant-velocity Kalman filter shared by all 136 landmark coordinates (they share P and K)."""

    def __init__(self, landmarks: np.ndarray, std: float) -> None:
        self.x = np.stack([landmarks.reshape(-1).astype(np.float64), np.zeros(landmarks.size)])  # (2, 136)
        self.P = np.diag([std * std, (2 * std) ** 2])

    def predict(self, q: float) -> None:
        f, qm = _cv_matrices(q)
        self.x = f @ self.x
        self.P = f @ self.P @ f.T + qm

    def update(self, landmarks: np.ndarray, std: float) -> None:
        s = self.P[0, 0] + std * std
        k = self.P[:, :1] / s  # (2, 1) gain for a position measurement
        self.x = self.x + k @ (landmarks.reshape(1, -1) - self.x[:1])
        self.P = self.P - k @ self.P[:1]

    @property
    def landmarks(self) -> np.ndarray:
        return self.x[0].reshape(68, 2).astype(np.float32)


@dataclass
class _Track:
    track_id: int
    box: KalmanFilter
    points: LandmarkFilter | None
    hits: int = 1
    streak: int = 1
    time_since_update: int = 0
    confirmed: bool = False
    strong: bool = True  # a detection at the detector's full threshold has joined it

    @property
    def width(self) -> float:
        return max(float(self.box.x[2, 0]), 1.0)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        cx, cy, w, h = self.box.x[:4, 0]
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


@dataclass
class Tracker:
    """Stateful, causal: call ``update`` once per frame, in order."""

    cfg: TrackConfig = field(default_factory=TrackConfig)
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 1

    def _new_box_filter(self, det: Detection) -> KalmanFilter:
        from filterpy.kalman import KalmanFilter

        x1, y1, x2, y2 = det.bbox
        w = max(x2 - x1, 1.0)
        kf = KalmanFilter(dim_x=8, dim_z=4)
        kf.F = np.eye(8) + np.eye(8, k=4)
        kf.H = np.eye(4, 8)
        kf.x[:4, 0] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        std = self.cfg.box_noise * w
        kf.P = np.diag([std**2] * 4 + [(2 * std) ** 2] * 4)
        return kf

    def _predict(self, track: _Track) -> None:
        q = self.cfg.motion_noise * track.width
        _, qm = _cv_matrices(q)
        track.box.Q = np.kron(qm, np.eye(4))  # state (cx, cy, w, h, their velocities)
        track.box.predict()
        if track.points is not None:
            track.points.predict(q)

    def _measure(self, track: _Track, det: Detection) -> None:
        x1, y1, x2, y2 = det.bbox
        track.box.R = np.eye(4) * (self.cfg.box_noise * track.width) ** 2
        track.box.update(np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]))
        if det.landmarks is not None:
            std = self.cfg.landmark_noise * track.width
            if track.points is None:
                track.points = LandmarkFilter(det.landmarks, std)
            else:
                track.points.update(det.landmarks, std)

    def update(self, detections: list[Detection] | None) -> list[TrackState]:
        """Advance one frame. ``None``: no detection ran on this frame (tracks coast, none is aged out)."""
        for track in self._tracks:
            self._predict(track)
        if detections is None:
            return self.states()
        matched_tracks, matched_dets = set(), set()
        if self._tracks and detections:
            iou = iou_matrix(np.array([t.bbox for t in self._tracks]), np.array([d.bbox for d in detections]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.cfg.iou_threshold:
                    matched_tracks.add(r)
                    matched_dets.add(c)
                    track = self._tracks[r]
                    self._measure(track, detections[c])
                    track.hits += 1
                    track.streak += 1
                    track.time_since_update = 0
                    track.strong = track.strong or not detections[c].weak
                    track.confirmed = track.confirmed or (track.strong and track.streak >= self.cfg.min_hits)
        for i, track in enumerate(self._tracks):
            if i not in matched_tracks:
                track.time_since_update += 1
                track.streak = 0
        self._tracks = [t for t in self._tracks
                        if t.time_since_update <= (self.cfg.max_age if t.strong else 0)]
        live = np.array([t.bbox for t in self._tracks]).reshape(-1, 4)
        for c, det in enumerate(detections):
            if c in matched_dets or (det.weak and det.width >= self.cfg.weak_birth_px):
                continue
            if len(live) and covered_fraction(np.array([det.bbox]), live).max() >= 0.5:
                continue  # part of a tracked face (half of it, cut by a search region's edge): not a face
            std = self.cfg.landmark_noise * max(det.width, 1.0)
            points = LandmarkFilter(det.landmarks, std) if det.landmarks is not None else None
            track = _Track(self._next_id, self._new_box_filter(det), points, strong=not det.weak)
            track.confirmed = track.strong and self.cfg.min_hits <= 1
            self._tracks.append(track)
            self._next_id += 1
        return self.states()

    def reset(self) -> None:
        """Drop every track (a scene cut); new tracks get new ids."""
        self._tracks = []

    def refine(self, track_id: int, landmarks: np.ndarray) -> None:
        """Feed landmarks decoded from DIC's output (frame pixels, (68, 2)) back into a track of this frame."""
        track = next((t for t in self._tracks if t.track_id == track_id), None)
        if track is None:
            return
        std = self.cfg.refine_noise * track.width
        if track.points is None:
            track.points = LandmarkFilter(landmarks, std)
        else:
            track.points.update(landmarks, std)

    def states(self) -> list[TrackState]:
        """Every live track (tentative ones included, flagged), in track-id order."""
        return [
            TrackState(t.track_id, t.bbox, None if t.points is None else t.points.landmarks, t.confirmed,
                       t.time_since_update)
            for t in sorted(self._tracks, key=lambda t: t.track_id)
        ]
