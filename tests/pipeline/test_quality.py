"""Whole-pipeline quality scoring against a ground-truth render."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dicface.models.errors import InputError
from dicface.models.imageio import write_png
from dicface.pipeline.examples import face_clip_frames, folder_faces
from dicface.pipeline.quality import face_regions, score_video


def test_scores_are_perfect_for_the_truth_and_worse_for_a_blurred_or_shaking_copy() -> None:
    truth, landmarks = face_clip_frames(4, 320, 180, (30,), scale=2)
    same = score_video(truth, truth, landmarks)
    assert same.ssim == 1.0 and same.temporal == 0.0 and same.psnr == float("inf")
    assert same.detail == 1.0 and same.gmsd == 0.0 and same.identity == 0.0
    blurred = score_video([cv2.GaussianBlur(f, (0, 0), 2) for f in truth], truth, landmarks)
    assert blurred.psnr < 35 and blurred.ssim < 0.95
    assert blurred.detail < 0.5 and blurred.gmsd > 0.05 and 0 < blurred.identity < 0.6  # softer, the same person
    shaking = [np.roll(f, 3 * (i % 2), axis=1) for i, f in enumerate(truth)]
    assert score_video(shaking, truth, landmarks).temporal > blurred.temporal


def test_face_regions_are_clipped_to_the_frame() -> None:
    points = np.zeros((1, 1, 68, 2), np.float32)
    points[0, 0, :, 0] = np.linspace(-5, 10, 68)
    points[0, 0, :, 1] = np.linspace(90, 120, 68)
    x1, y1, x2, y2 = face_regions(points, (100, 50))[0, 0]
    assert (x1, y1, x2, y2) == (0, 82, 19, 100)  # pad 7.5 px (a quarter of the 30-px extent)


def test_the_ground_truth_render_lies_exactly_on_the_input() -> None:
    """The xK render, scaled down by K, is best aligned with the 1x frame at zero shift: a truth that is off by a
    fraction of a pixel favours blurry methods over sharp ones (it hid DIC's gain on the video path)."""
    from dicface.models.faces import resize_bicubic
    from dicface.models.metrics import psnr_y

    low, landmarks = face_clip_frames(2, 320, 180, (40, 30))
    x1, y1, x2, y2 = face_regions(landmarks, (180, 320))[1, 0]
    region = np.s_[y1:y2, x1:x2]
    for k in (2, 4):
        high, _ = face_clip_frames(2, 320, 180, (40, 30), scale=k)
        down = resize_bicubic(high[1], (320, 180))
        scores = {}
        for dx, dy in ((0, 0), (0.3, 0), (-0.3, 0), (0, 0.3), (0, -0.3)):
            moved = cv2.warpAffine(down, np.float32([[1, 0, dx], [0, 1, dy]]), (320, 180), flags=cv2.INTER_LINEAR)
            scores[dx, dy] = psnr_y(moved[region], low[1][region], 0)
        assert scores[0, 0] > 30 and scores[0, 0] == max(scores.values()), scores


def test_a_folder_of_photos_gives_one_face_each(tmp_path: Path) -> None:
    from skimage import data

    photo = data.astronaut()
    for name in ("a.png", "b.png"):
        write_png(photo, tmp_path / name)
    faces = folder_faces(tmp_path, count=2)
    assert len(faces) == 2 and faces[0].head.shape[0] > 100 and faces[0].landmarks.shape == (68, 2)
    low, high = faces[0].landmarks.min(axis=0), faces[0].landmarks.max(axis=0)
    assert (low >= 0).all() and (high < faces[0].head.shape[1::-1]).all()  # the landmarks lie in the head
    write_png(np.full((64, 64, 3), 128, np.uint8), tmp_path / "c.png")
    with pytest.raises(InputError, match="in only 2 of its images"):
        folder_faces(tmp_path, count=3)
