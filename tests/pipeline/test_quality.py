"""Whole-pipeline quality scoring against a ground-truth render."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.examples import face_clip_frames
from pipeline.quality import face_regions, score_video


def test_scores_are_perfect_for_the_truth_and_worse_for_a_blurred_or_shaking_copy() -> None:
    truth, landmarks = face_clip_frames(4, 320, 180, (30,), scale=2)
    same = score_video(truth, truth, landmarks)
    assert same.ssim == 1.0 and same.flicker == 0.0 and same.psnr == float("inf")
    blurred = score_video([cv2.GaussianBlur(f, (0, 0), 2) for f in truth], truth, landmarks)
    assert blurred.psnr < 35 and blurred.ssim < 0.95
    shaking = [np.roll(f, 3 * (i % 2), axis=1) for i, f in enumerate(truth)]
    assert score_video(shaking, truth, landmarks).flicker > blurred.flicker


def test_face_regions_are_clipped_to_the_frame() -> None:
    points = np.zeros((1, 1, 68, 2), np.float32)
    points[0, 0, :, 0] = np.linspace(-5, 10, 68)
    points[0, 0, :, 1] = np.linspace(90, 120, 68)
    x1, y1, x2, y2 = face_regions(points, (100, 50))[0, 0]
    assert (x1, y1, x2, y2) == (0, 82, 19, 100)  # pad 7.5 px (a quarter of the 30-px extent)
