"""Tracker on scripted detections with known motion: stable IDs, hysteresis, gaps, smoothing, DIC feedback."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dicface.configs.video import TrackConfig
from dicface.pipeline.boxes import iou_matrix
from dicface.pipeline.track import Tracker
from dicface.pipeline.types import Detection

MEAN_SHAPE = np.stack([np.cos(np.linspace(0, 6.0, 68)), np.sin(np.linspace(0, 6.0, 68))], axis=1) * 0.4


def truth(frame: int, start: tuple[float, float], velocity: tuple[float, float], width: float) -> np.ndarray:
    """(68, 2) true landmarks of a face of ``width`` px moving at constant velocity."""
    centre = np.array(start) + frame * np.array(velocity)
    points = centre + MEAN_SHAPE * width
    points[36] = centre + np.array([-0.3 * width, -0.1 * width])
    points[45] = centre + np.array([0.3 * width, -0.1 * width])
    return points


def detect(points: np.ndarray, width: float, rng: np.random.Generator, noise: float = 0.04) -> Detection:
    noisy = points + rng.normal(0, noise * width, points.shape)
    cx, cy = points.mean(axis=0) + rng.normal(0, noise * width, 2)
    return Detection((cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2), 0.9, noisy.astype(np.float32))


def jitter(series: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Mean frame-to-frame landmark error against the known motion, over the inter-ocular distance."""
    errors = []
    for t in range(1, len(series)):
        step_error = (series[t] - series[t - 1]) - (truths[t] - truths[t - 1])
        errors.append(np.linalg.norm(step_error, axis=1).mean() / np.linalg.norm(truths[t][36] - truths[t][45]))
    return float(np.mean(errors))


def test_iou() -> None:
    a = np.array([[0, 0, 10, 10]], float)
    assert iou_matrix(a, np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)).tolist() == [
        [1.0, pytest.approx(1 / 3), 0.0]
    ]


def test_two_faces_keep_their_ids_and_landmarks_are_smoothed() -> None:
    rng = np.random.default_rng(0)
    tracker = Tracker()
    faces = [((60, 100), (2.0, 0.5), 30.0), ((300, 120), (-1.5, 0.0), 24.0)]
    raw: dict[int, list[np.ndarray]] = {0: [], 1: []}
    smooth: dict[int, list[np.ndarray]] = {0: [], 1: []}
    truths: dict[int, list[np.ndarray]] = {0: [], 1: []}
    ids_seen: dict[int, set[int]] = {0: set(), 1: set()}
    for t in range(60):
        dets = []
        for k, (start, vel, width) in enumerate(faces):
            g = truth(t, start, vel, width)
            dets.append(detect(g, width, rng))
            truths[k].append(g)
            raw[k].append(dets[-1].landmarks)
        states = tracker.update(dets[::-1] if t % 2 else dets)  # order of detections must not matter
        for s in states:
            k = int(np.argmin([np.linalg.norm(np.mean(s.landmarks, 0) - truths[j][-1].mean(0)) for j in (0, 1)]))
            ids_seen[k].add(s.track_id)
            smooth[k].append(s.landmarks)
    assert ids_seen == {0: {1}, 1: {2}}
    for k in (0, 1):
        raw_j, smooth_j = jitter(raw[k][10:], truths[k][10:]), jitter(smooth[k][10:], truths[k][10:])
        assert smooth_j < 0.7 * raw_j, (raw_j, smooth_j)  # at least 30% less jitter


def test_birth_and_death_hysteresis() -> None:
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackConfig(min_hits=3, max_age=2))
    g = truth(0, (100, 100), (0, 0), 30)
    assert [s.confirmed for s in tracker.update([detect(g, 30, rng)])] == [False]
    tracker.update([detect(g, 30, rng)])
    assert [s.confirmed for s in tracker.update([detect(g, 30, rng)])] == [True]
    assert len(tracker.update([])) == 1 and len(tracker.update([])) == 1  # coasting
    assert tracker.update([]) == []  # max_age exceeded


def test_frames_without_detection_coast_on_the_motion() -> None:
    rng = np.random.default_rng(2)
    tracker = Tracker()
    for t in range(20):
        tracker.update([detect(truth(t, (50, 50), (3.0, 0.0), 30), 30, rng, noise=0.01)])
    for _ in range(20, 25):
        (state,) = tracker.update(None)  # detect-every gap: predicted, not aged
        assert state.time_since_update == 0
    assert abs(np.mean(state.landmarks[:, 0]) - truth(24, (50, 50), (3.0, 0.0), 30)[:, 0].mean()) < 2.0


def test_dic_feedback_pulls_landmarks_towards_a_precise_measurement() -> None:
    rng = np.random.default_rng(3)
    tracker = Tracker()
    g = truth(0, (100, 100), (0, 0), 30)
    tracker.update([detect(g, 30, rng, noise=0.1)])
    (before,) = tracker.states()
    tracker.refine(before.track_id, g)
    (after,) = tracker.states()
    assert np.abs(after.landmarks - g).mean() < 0.5 * np.abs(before.landmarks - g).mean()
    tracker.refine(999, g)  # unknown track: ignored


def test_detections_without_landmarks_track_boxes_only() -> None:
    tracker = Tracker(TrackConfig(min_hits=1))
    (state,) = tracker.update([Detection((10, 10, 40, 40), 0.9)])
    assert state.landmarks is None and state.confirmed
    assert state.bbox == pytest.approx((10, 10, 40, 40))


def test_a_weak_detection_continues_a_track_and_only_a_small_one_starts_one() -> None:
    tracker = Tracker(TrackConfig(min_hits=2, weak_birth_px=24))
    assert tracker.update([Detection((10, 10, 40, 40), 0.5, weak=True)]) == []  # 30 px: junk, not a small face
    tracker.update([Detection((10, 10, 40, 40), 0.9)])
    (state,) = tracker.update([Detection((11, 10, 41, 40), 0.5, weak=True)])
    assert state.confirmed and state.time_since_update == 0  # the second match confirms it
    (state,) = tracker.update([Detection((12, 10, 42, 40), 0.5, weak=True), Detection((200, 10, 230, 40), 0.5,
                                                                                        weak=True)])
    assert state.track_id == 1  # the wide weak one far away started nothing


def test_a_small_weak_face_is_confirmed_only_by_a_full_detection() -> None:
    tracker = Tracker(TrackConfig(min_hits=2, weak_birth_px=24))
    small = [Detection((100.0 + t, 50, 112.0 + t, 62), 0.45, weak=True) for t in range(4)]
    (state,) = tracker.update([small[0]])
    assert not state.confirmed  # tentative
    (state,) = tracker.update([small[1]])
    assert not state.confirmed  # two weak matches are not enough
    (state,) = tracker.update([replace(small[2], score=0.7, weak=False)])
    assert state.confirmed
    tracker = Tracker(TrackConfig(min_hits=2, weak_birth_px=24))
    tracker.update([small[0]])
    assert tracker.update([]) == []  # never confirmed by a full detection: dropped at its first miss


def test_no_track_starts_inside_a_tracked_face() -> None:
    tracker = Tracker(TrackConfig(min_hits=1, weak_birth_px=24))
    tracker.update([Detection((100, 50, 120, 74), 0.9)])
    # half a neighbouring face cut by a search region's edge, scored high or low: starts nothing
    for score in (0.8, 0.45):
        states = tracker.update([Detection((100, 50, 120, 74), 0.9), Detection((101, 53, 108, 66), score,
                                                                              weak=score < 0.6)])
        assert [s.track_id for s in states] == [1]
    states = tracker.update([Detection((100, 50, 120, 74), 0.9), Detection((121, 50, 141, 74), 0.9)])
    assert [s.track_id for s in states] == [1, 2]  # a face beside it does

