"""Landmark jitter on real detections of real faces moving with a known, smooth sub-pixel motion.

Jitter: the frame-to-frame displacement of the 68 landmarks minus the true displacement, averaged over the points
and normalised by the true outer-eye-corner distance. The tracker's smoothed landmarks must cut it by >= 30%.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from dicface.configs.video import DetectConfig
from dicface.pipeline.detect.dlib_backend import DlibLandmarker
from dicface.pipeline.detect.regions import ScheduledDetector
from dicface.pipeline.detect.yunet import YuNetDetector
from dicface.pipeline.examples import make_face_clip
from dicface.pipeline.track import Tracker

pytestmark = pytest.mark.slow


def jitter(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Shape: (T, F, 68, 2) estimates (NaN where missing) and truth -> (F,) mean normalised jitter per face."""
    error = np.linalg.norm(np.diff(points, axis=0) - np.diff(truth, axis=0), axis=-1).mean(-1)
    eyes = np.linalg.norm(truth[1:, :, 36] - truth[1:, :, 45], axis=-1)
    return np.nanmean(error / eyes, axis=0)


def _nearest_face(points: np.ndarray, truth: np.ndarray) -> int:
    return int(np.argmin([np.abs(points - t).mean() for t in truth]))


def test_smoothed_landmarks_jitter_less_than_raw_detections(tmp_path: Path) -> None:
    clip = tmp_path / "faces.mp4"
    truth = make_face_clip(clip, count=30, audio=False, face_widths=(36, 28, 22))
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    detector = ScheduledDetector(YuNetDetector(landmarker=DlibLandmarker()), DetectConfig(every=1))
    tracker = Tracker()
    raw, smooth = np.full(truth.shape, np.nan), np.full(truth.shape, np.nan)
    states = []
    for t, image in enumerate(frames):
        detections = detector(t, image, [s.bbox for s in states])
        states = tracker.update(detections)
        for det in detections:
            raw[t, _nearest_face(det.landmarks, truth[t])] = det.landmarks
        for state in states:
            smooth[t, _nearest_face(state.landmarks, truth[t])] = state.landmarks
    assert np.isnan(raw[..., 0, 0]).mean() < 0.1  # each face, 22 px included, found in >90% of the frames
    assert not np.isnan(smooth[2:]).any()  # the tracker bridges the misses
    raw_jitter, smooth_jitter = jitter(raw, truth), jitter(smooth, truth)
    assert np.all(smooth_jitter <= 0.7 * raw_jitter), (raw_jitter, smooth_jitter)
    assert np.abs(smooth[-1] - truth[-1]).mean() < 1.0  # and they stay on the face (px)
