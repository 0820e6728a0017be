"""Training degradations: the bicubic protocol unchanged, the video mode deterministic and consistent."""

from __future__ import annotations

import numpy as np
import pytest

from configs.model import DegradationConfig
from models.degrade import degrade, h264, jpeg, shift_pair
from models.faces import resize_bicubic

VIDEO = DegradationConfig(mode="video", clean_fraction=0.0, blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0)


@pytest.fixture
def face(real_faces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    hr = resize_bicubic(real_faces[0], 128)
    points = np.stack(np.meshgrid(np.linspace(30, 98, 17), np.linspace(40, 100, 4)), -1).reshape(-1, 2)[:68]
    return hr, points.astype(np.float32)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_bicubic_mode_is_the_dic_protocol(face: tuple[np.ndarray, np.ndarray], size: int) -> None:
    hr, points = face
    lr, hr_out, points_out = degrade(hr, points, size, DegradationConfig(), np.random.default_rng(0))
    assert np.array_equal(lr, resize_bicubic(hr, size)) and hr_out is hr and points_out is points


def test_video_mode_is_deterministic_and_degrades(face: tuple[np.ndarray, np.ndarray]) -> None:
    hr, points = face
    first = degrade(hr, points, 32, VIDEO, np.random.default_rng([0, 5]))
    again = degrade(hr, points, 32, VIDEO, np.random.default_rng([0, 5]))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    lr, hr_out, _ = first
    clean = resize_bicubic(hr_out, 32)
    assert lr.shape == (32, 32, 3) and 0 < np.abs(lr.astype(int) - clean).mean() < 20


def test_a_shift_moves_the_target_and_its_landmarks_together(face: tuple[np.ndarray, np.ndarray]) -> None:
    hr, points = face
    moved, moved_points = shift_pair(hr, points, 2, -1)
    assert np.array_equal(moved[10:100, 10:100], hr[11:101, 8:98])  # content moved right 2, up 1
    assert np.allclose(moved_points - points, [2, -1])


def test_jpeg_round_trip_keeps_size_and_roughly_the_image(face: tuple[np.ndarray, np.ndarray]) -> None:
    hr, _ = face
    out = jpeg(hr, 50)
    assert out.shape == hr.shape and out.dtype == np.uint8 and np.abs(out.astype(int) - hr).mean() < 8


def test_h264_round_trip_quantises_more_at_a_higher_crf(face: tuple[np.ndarray, np.ndarray]) -> None:
    lr = resize_bicubic(face[0], 32)
    errors = []
    for crf in (10, 22, 34):
        out = h264(lr, crf, (5, 11))
        assert out.shape == lr.shape and out.dtype == np.uint8
        errors.append(np.abs(out.astype(int) - lr).mean())
    assert errors[0] < errors[1] < errors[2] < 25
    assert not np.array_equal(h264(lr, 30, (0, 0)), h264(lr, 30, (7, 3)))  # the block grid falls elsewhere


def test_video_mode_codes_with_h264_when_asked(face: tuple[np.ndarray, np.ndarray]) -> None:
    hr, points = face
    only_h264 = DegradationConfig(mode="video", clean_fraction=0.0, shift=False, blur_prob=0.0, noise_prob=0.0,
                                  jpeg_prob=0.0, h264_prob=1.0, h264_crf=(30, 30))
    lr, _, _ = degrade(hr, points, 32, only_h264, np.random.default_rng(3))
    clean = resize_bicubic(hr, 32)
    assert any(np.array_equal(lr, h264(clean, 30, (dx, dy))) for dx in range(16) for dy in range(16))
    with pytest.raises(ValueError, match="one codec per sample"):
        DegradationConfig(mode="video", jpeg_prob=0.7, h264_prob=0.4)


def test_batches_follow_the_member_size_and_the_degradation(face: tuple[np.ndarray, np.ndarray]) -> None:
    from models.data import FacePairs

    hr, points = face
    pairs = FacePairs(hr[None], points[None].repeat(68 // len(points) + 1, 1)[:, :68], ("a",))
    batch = pairs.batch(seed=1, iteration=3, size=4, flip=True, lr_size=64, degradation=VIDEO)
    again = pairs.batch(seed=1, iteration=3, size=4, flip=True, lr_size=64, degradation=VIDEO)
    assert batch["lr"].shape == (4, 3, 64, 64) and batch["hr"].shape == (4, 3, 128, 128)
    assert all(np.array_equal(batch[k], again[k]) for k in batch)
    halves = [pairs.batch(seed=1, iteration=3, size=4, flip=True, shard=(r, 2), lr_size=64, degradation=VIDEO)
              for r in (0, 1)]
    assert np.array_equal(halves[0]["lr"], batch["lr"][0::2]) and np.array_equal(halves[1]["lr"], batch["lr"][1::2])


def test_invalid_degradations_are_refused() -> None:
    with pytest.raises(ValueError):
        DegradationConfig(mode="h265")
    with pytest.raises(ValueError):
        DegradationConfig(jpeg_quality=(90, 50))
