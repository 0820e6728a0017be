"""Training degradations: the bicubic protocol unchanged, the video mode deterministic and consistent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dicface.configs.model import DegradationConfig
from dicface.models.degrade import degrade, degrade_frames, h264, h264_clip, jpeg, shift_pair
from dicface.models.faces import resize_bicubic

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
    from dicface.models.data import FacePairs

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


def test_earlier_frames_are_other_views_of_the_face_carried_onto_the_current_grid(
        face: tuple[np.ndarray, np.ndarray]) -> None:
    """Each earlier frame samples the face at another phase; carried back by its known shift it lines up with
    the current frame (to the interpolation's blur), which an uncarried view does not."""
    hr, points = face
    clean = DegradationConfig(mode="video", clean_fraction=1.0, registration_sigma=0.0, missing_prob=0.0,
                              change_prob=0.0)
    stack, target, points_out = degrade_frames(hr, points, 32, 3, clean, np.random.default_rng(3))
    assert stack.shape == (3, 32, 32, 3) and target is not None and points_out.shape == (68, 2)
    assert np.array_equal(stack[0], resize_bicubic(target, 32))  # a clean sample: the DIC protocol's LR
    inner = np.s_[4:-4, 4:-4]
    for earlier in stack[1:]:
        assert np.abs(earlier[inner].astype(int) - stack[0][inner]).mean() < 4
    moved, _ = shift_pair(hr, points, 2, -2)  # half an LR pixel away, not carried back
    assert np.abs(resize_bicubic(moved, 32)[inner].astype(int) - stack[0][inner]).mean() > 4
    turned = replace(clean, change_prob=1.0, change_degrees=8.0)
    stack, _, _ = degrade_frames(hr, points, 32, 3, turned, np.random.default_rng(3))
    assert np.abs(stack[1][inner].astype(int) - stack[0][inner]).mean() > 4  # not undone by the shift


def test_earlier_frames_share_the_codec_and_missing_ones_repeat_the_current(
        face: tuple[np.ndarray, np.ndarray]) -> None:
    hr, points = face
    coded = DegradationConfig(mode="video", clean_fraction=0.0, jpeg_prob=0.0, h264_prob=1.0, h264_crf=(30, 30))
    first = degrade_frames(hr, points, 32, 3, coded, np.random.default_rng([1, 2]))
    again = degrade_frames(hr, points, 32, 3, coded, np.random.default_rng([1, 2]))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    stack, target, _ = first
    assert 0 < np.abs(stack[0].astype(int) - resize_bicubic(target, 32)).mean() < 20
    missing = DegradationConfig(mode="video", clean_fraction=1.0, missing_prob=1.0)
    repeats = [degrade_frames(hr, points, 32, 3, missing, np.random.default_rng(k))[0] for k in range(8)]
    assert all(np.array_equal(s[2], s[0]) for s in repeats)  # at least the oldest is missing
    assert any(not np.array_equal(s[1], s[0]) for s in repeats)  # sometimes only the oldest


def test_h264_clip_codes_frames_in_order() -> None:
    rng = np.random.default_rng(0)
    frames = [np.full((32, 32, 3), 40 * k, np.uint8) + rng.integers(0, 20, (32, 32, 3)).astype(np.uint8)
              for k in range(3)]
    out = h264_clip(frames, 20, (5, 9))
    assert len(out) == 3 and all(np.abs(o.astype(int) - f).mean() < 8 for o, f in zip(out, frames, strict=True))


def test_a_large_face_members_batches_have_its_output_size(face: tuple[np.ndarray, np.ndarray]) -> None:
    """HR faces of 192 px (a large-face member's output): the LR input at x2, heatmaps at 48 px, flips about the
    192-px crop; the earlier frames of a multi-frame sample on the same grid."""
    from dicface.models.data import FacePairs

    hr, points = resize_bicubic(face[0], 192), face[1] * 1.5 + 0.25
    pairs = FacePairs(hr[None], points[None], ("a",))
    batch = pairs.batch(seed=2, iteration=0, size=4, flip=True, lr_size=96, degradation=VIDEO, frames=3)
    assert batch["lr"].shape == (4, 9, 96, 96) and batch["hr"].shape == (4, 3, 192, 192)
    assert batch["heatmaps"].shape == (4, 68, 48, 48)
    flipped = pairs.sample(0, flip=True, lr_size=96)[2]
    assert np.allclose(flipped[:, 0].max(), 191 - points[:, 0].min(), atol=1e-4)
