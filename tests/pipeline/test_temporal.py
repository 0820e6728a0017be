"""Ground-truth-free temporal measures (``pipeline.temporal``) on generated clips of real faces with known motion."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from dicface.models.faces import resize_bicubic, square_box
from dicface.pipeline.examples import face_clip_frames
from dicface.pipeline.temporal import FaceObservation, TemporalMeter, backward_flow, landmark_jitter

FRAMES = 8


def _measure(inputs: list[np.ndarray], outputs: list[np.ndarray], landmarks: np.ndarray) -> dict[str, float]:
    meter = TemporalMeter()
    for t, (image, output) in enumerate(zip(inputs, outputs, strict=True)):
        meter.add(t, image, output, [FaceObservation(k, square_box(p), p) for k, p in enumerate(landmarks[t])])
    summary = meter.summary()
    assert summary.pairs == (FRAMES - 1) * landmarks.shape[1]
    return summary.to_dict()


def test_bicubic_scores_as_its_baseline_and_the_truth_steadier_and_flicker_worse() -> None:
    inputs, landmarks = face_clip_frames(FRAMES, 240, 140, (24, 32))
    truth, _ = face_clip_frames(FRAMES, 240, 140, (24, 32), scale=2)
    bicubic = [resize_bicubic(f, (480, 280)) for f in inputs]
    noise = np.random.default_rng(0).normal(0, 6, (FRAMES, 280, 480, 1))
    flickering = [np.clip(f + n, 0, 255).astype(np.uint8) for f, n in zip(bicubic, noise, strict=True)]
    plain, steady, shaky = (_measure(inputs, out, landmarks) for out in (bicubic, truth, flickering))
    assert abs(plain["warping_error"] - plain["warping_error_bicubic"]) < 0.05 * plain["warping_error_bicubic"]
    assert steady["warping_error"] < 0.8 * steady["warping_error_bicubic"]  # the truth does not alias
    assert steady["appearance_change"] < 0.5 * steady["appearance_change_bicubic"]
    assert shaky["warping_error"] > plain["warping_error"] + 2 and shaky["appearance_change"] > plain[
        "appearance_change"] + 1.5


def test_a_scene_cut_or_a_gap_makes_no_pair() -> None:
    inputs, landmarks = face_clip_frames(3, 240, 140, (32,))
    meter = TemporalMeter()
    face = [FaceObservation(1, square_box(landmarks[0, 0]), landmarks[0, 0])]
    meter.add(0, inputs[0], inputs[0], face)
    meter.reset()
    meter.add(1, inputs[1], inputs[1], face)
    meter.add(3, inputs[2], inputs[2], face)  # frame 2 not seen
    assert meter.summary().pairs == 0


def test_landmark_jitter_is_the_residual_of_a_smooth_path() -> None:
    t = np.arange(30, dtype=np.float64)[:, None, None]
    path = np.zeros((30, 68, 2)) + np.stack([2.0 * t[..., 0], 0.01 * t[..., 0] ** 2], -1)  # accelerating
    widths = [40.0] * 30
    total, count = landmark_jitter(list(path), widths)
    assert count == 30 * 68 and total / count < 1e-9
    noisy = path + np.random.default_rng(1).normal(0, 0.4, path.shape)  # 1 % of the width per axis
    total, count = landmark_jitter(list(noisy), widths)
    assert 0.005 < total / count < 0.015
    assert landmark_jitter(list(path[:5]), widths[:5]) == (0.0, 0)  # too short to fit


def test_streams_measuring_at_once_get_the_flow_of_their_own_frames() -> None:
    """The streams of a job measure on their own threads; a shared DIS object crashed the process (SIGSEGV)."""
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(96, 300, 2))
        image = cv2.GaussianBlur(rng.integers(0, 255, (h, w), dtype=np.uint8), (0, 0), 3)
        pairs.append((image, np.roll(image, 2, axis=1)))
    alone = [backward_flow(*pair)[0] for pair in pairs]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda pair: backward_flow(*pair)[0], pairs * 2))
    assert all(np.array_equal(a, b) for a, b in zip(alone * 2, together, strict=True))
