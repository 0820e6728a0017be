"""Temporal fusion of a track's SR faces: steadier where the face agrees, the current frame where it changed."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from dicface.configs.video import FusionConfig
from dicface.models.faces import HR_SIZE, resize_bicubic
from dicface.pipeline import fusion as fusion_module
from dicface.pipeline.examples import astronaut_faces
from dicface.pipeline.fusion import Y_WEIGHTS, TemporalFusion, register
from dicface.pipeline.types import EnhancedFace

SEED = np.stack(np.meshgrid(np.linspace(30, 98, 17), np.linspace(40, 100, 4)), -1).reshape(-1, 2)[:68]


def _face(image: np.ndarray, index: int, track: int = 1, shift: tuple[float, float] = (0.0, 0.0),
          seed: np.ndarray | None = SEED) -> EnhancedFace:
    moved = cv2.warpAffine(image, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (HR_SIZE, HR_SIZE),
                           borderMode=cv2.BORDER_REPLICATE)
    points = None if seed is None else (seed + shift).astype(np.float32)
    return EnhancedFace(index, track, (0.0, 0.0, 16.0, 16.0), moved, np.zeros((68, 2), np.float32), points)


CAUSAL = FusionConfig(lookahead=0)  # each frame fused with earlier faces only, and returned at once


def _now(fusion: TemporalFusion, index: int, faces: list[EnhancedFace]) -> list[EnhancedFace]:
    """The fused faces of frame ``index`` of a causal fusion, returned by the push itself."""
    ((done, fused),) = fusion.push(index, faces)
    assert done == index
    return fused


def _head() -> np.ndarray:
    return resize_bicubic(astronaut_faces()[0].head, HR_SIZE)


def test_noise_that_changes_every_frame_is_averaged_out_along_the_motion() -> None:
    head, rng = _head().astype(np.float32), np.random.default_rng(0)
    fusion, errors_in, errors_out = TemporalFusion(CAUSAL), [], []
    for t in range(12):
        shift = (0.7 * t, -0.4 * t)  # the face moves; its seed landmarks move with it
        clean = _face(head.astype(np.uint8), t, shift=shift).sr.astype(np.float32)
        noisy = np.clip(clean + rng.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)
        face = _face(head.astype(np.uint8), t, shift=shift)
        out = _now(fusion, t, [EnhancedFace(t, 1, face.box, noisy, face.landmarks, face.seed)])[0]
        inner = np.s_[16:-16, 16:-16]
        errors_in.append(np.abs(noisy[inner] - clean[inner]).mean())
        errors_out.append(np.abs(out.sr[inner] - clean[inner]).mean())
    assert errors_out[0] == errors_in[0]  # a track's first frame is the SR face itself
    assert np.mean(errors_out[4:]) < 0.6 * np.mean(errors_in[4:])


def test_faces_are_carried_by_their_registered_crops_when_the_landmarks_jitter() -> None:
    """A small face's tracked landmarks jitter by pixels of the 128-px crop from frame to frame: carried by them,
    the past faces land beside the current one and are mostly rejected; registered by their LR crops, they line up
    and average DIC's flicker away."""
    head, rng = _head(), np.random.default_rng(1)
    errors = {}
    for on in (False, True):
        fusion, noise = TemporalFusion(FusionConfig(register=on, lookahead=0)), np.random.default_rng(0)
        out_errors = []
        for t in range(12):
            face = _face(head, t, shift=(0.7 * t, -0.4 * t))
            clean = face.sr.astype(np.float32)
            noisy = np.clip(clean + noise.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)
            jitter = (face.seed + rng.normal(0, 2.5, 2)).astype(np.float32)  # the whole set moves, as a crop's do
            lr = resize_bicubic(face.sr, 32)
            out = _now(fusion, t, [replace(face, sr=noisy, seed=jitter, lr=lr)])[0]
            inner = np.s_[24:-24, 24:-24]
            out_errors.append(np.abs(out.sr[inner] - clean[inner]).mean())
        errors[on] = np.mean(out_errors[4:])
    assert errors[True] < 0.8 * errors[False]


def test_a_registration_that_runs_off_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    head = _head()
    lr = resize_bicubic(head, 32)
    faces = [replace(_face(head, t, shift=(0.5 * t, 0.0)), lr=lr) for t in range(3)]
    by_landmarks = TemporalFusion(FusionConfig(register=False, lookahead=0))
    plain = [_now(by_landmarks, t, [f])[0] for t, f in enumerate(faces)]
    monkeypatch.setattr(fusion_module, "register", lambda *_: np.array([[1, 0, 40.0], [0, 1, 0], [0, 0, 1]]))
    fusion = TemporalFusion(CAUSAL)
    ran_off = [_now(fusion, t, [f])[0] for t, f in enumerate(faces)]
    assert all(np.array_equal(a.sr, b.sr) for a, b in zip(plain, ran_off, strict=True))  # the landmarks carried


def test_registration_finds_the_crops_sub_pixel_motion_that_landmarks_miss() -> None:
    head = _head()
    before = resize_bicubic(head, 32).astype(np.float32) @ Y_WEIGHTS
    for dx, dy in ((1.5, -0.75), (-2.25, 3.0)):  # 128-px crop pixels
        moved = cv2.warpAffine(head, np.float32([[1, 0, dx], [0, 1, dy]]), (HR_SIZE, HR_SIZE),
                               flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        now = resize_bicubic(moved, 32).astype(np.float32) @ Y_WEIGHTS
        guess = np.float32([[1, 0, 0], [0, 1, 0]])  # the landmarks saw no motion
        m = register(before, now, guess, SEED + np.array([dx, dy]))
        assert m is not None
        carried = SEED @ m[:2, :2].T + m[:2, 2]  # the face's points, where the registered map puts them
        assert np.abs(carried - (SEED + np.array([dx, dy]))).max() < 0.5  # a landmark fit would be off by (dx, dy)
    flat = np.full((32, 32), 100.0, np.float32)  # nothing to register by: the caller falls back to the landmarks
    assert register(flat, flat, guess, SEED) is None


def test_a_changed_face_a_gap_a_jump_or_no_landmarks_keep_the_current_frame() -> None:
    head, other = _head(), resize_bicubic(astronaut_faces()[0].head[::-1].copy(), HR_SIZE)
    fusion = TemporalFusion(CAUSAL)
    _now(fusion, 0, [_face(head, 0)])
    changed = _now(fusion, 1, [_face(other, 1)])[0]  # another face in the same place: it disagrees everywhere
    assert np.abs(changed.sr.astype(int) - other).mean() < 2
    _now(fusion, 2, [])
    after_gap = _now(fusion, 3, [_face(head, 3)])[0]  # frame 2 had no face for the track: nothing to carry
    assert np.array_equal(after_gap.sr, head)
    jumped = _now(fusion, 4, [_face(other, 4, shift=(30.0, 0.0))])[0]  # moved by a quarter of the crop
    assert np.array_equal(jumped.sr, _face(other, 4, shift=(30.0, 0.0)).sr)
    plain = TemporalFusion(CAUSAL)
    _now(plain, 0, [_face(head, 0, seed=None)])
    assert np.array_equal(_now(plain, 1, [_face(other, 1, seed=None)])[0].sr, other)


def test_strength_zero_is_frame_by_frame_and_tracks_do_not_mix() -> None:
    head, other = _head(), resize_bicubic(astronaut_faces()[0].head[:, ::-1].copy(), HR_SIZE)
    off = TemporalFusion(FusionConfig(weight=0.0, lookahead=0))
    _now(off, 0, [_face(head, 0)])
    assert np.array_equal(_now(off, 1, [_face(other, 1)])[0].sr, other)
    fusion = TemporalFusion(CAUSAL)
    _now(fusion, 0, [_face(head, 0, track=1)])
    assert np.array_equal(_now(fusion, 1, [_face(other, 1, track=2)])[0].sr, other)  # track 2 is new


def test_lookahead_returns_frames_in_order_later_and_averages_a_tracks_first_frame() -> None:
    head, rng = _head().astype(np.float32), np.random.default_rng(0)
    fusion, out = TemporalFusion(FusionConfig(lookahead=2)), {}
    noisy = [np.clip(head + rng.normal(0, 4, head.shape), 0, 255).astype(np.uint8) for _ in range(6)]
    for t in range(6):
        ready = fusion.push(t, [_face(noisy[t], t)] if t != 4 else [])  # frame 4: the track is not seen
        assert [i for i, _ in ready] == ([] if t < 2 else [t - 2])
        out.update((i, faces) for i, faces in ready)
    rest = fusion.flush()
    assert [i for i, _ in rest] == [4, 5] and fusion.flush() == []
    out.update(rest)
    inner = np.s_[16:-16, 16:-16]
    first = np.abs(out[0][0].sr[inner] - head[inner]).mean()
    assert first < 0.8 * np.abs(noisy[0][inner] - head[inner]).mean()  # averaged with frames 1 and 2
    assert out[4] == []


def test_lookahead_shows_a_change_on_its_first_frame() -> None:
    head = _head().astype(np.float32)
    shown = {}
    for lookahead in (0, 4):
        fusion, out = TemporalFusion(FusionConfig(lookahead=lookahead)), {}
        for t in range(16):
            image = head.copy()
            image[50:60, 40:56] += 16 if t >= 12 else 0  # an eye-sized patch brightens from frame 12 on
            out.update(fusion.push(t, [_face(np.clip(image, 0, 255).astype(np.uint8), t)]))
        out.update(fusion.flush())
        before = _face(np.clip(head, 0, 255).astype(np.uint8), 0).sr.astype(np.float32)
        change = (out[12][0].sr.astype(np.float32) - before)[50:60, 40:56] @ Y_WEIGHTS
        shown[lookahead] = change.mean() / (16 * Y_WEIGHTS.sum())
    assert shown[4] > 1.5 * shown[0] and shown[4] > 0.5, shown


def test_a_large_members_faces_are_fused_in_their_own_pixels() -> None:
    """SR faces of a 192-px member: the same motion (found in the 128-px crop frame) carries them, applied in their
    pixels; a face of another member in the same run is not carried."""
    big = resize_bicubic(astronaut_faces()[0].head, 192)
    rng = np.random.default_rng(3)
    fusion, errors_in, errors_out = TemporalFusion(CAUSAL), [], []
    for t in range(10):
        shift = (0.6 * t, -0.3 * t)  # in the 128-px frame: 1.5x as many pixels of the 192-px face
        clean = cv2.warpAffine(big, np.float32([[1, 0, 1.5 * shift[0]], [0, 1, 1.5 * shift[1]]]), (192, 192),
                               borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        noisy = np.clip(clean + rng.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)
        face = EnhancedFace(t, 1, (0.0, 0.0, 16.0, 16.0), noisy, np.zeros((68, 2), np.float32),
                            (SEED + shift).astype(np.float32))
        out = _now(fusion, t, [face])[0]
        assert out.sr.shape == (192, 192, 3)
        inner = np.s_[24:-24, 24:-24]
        errors_in.append(np.abs(noisy[inner] - clean[inner]).mean())
        errors_out.append(np.abs(out.sr[inner] - clean[inner]).mean())
    assert np.mean(errors_out[4:]) < 0.6 * np.mean(errors_in[4:])
    small = _face(_head(), 10, shift=(6.0, -3.0))
    assert np.array_equal(_now(fusion, 10, [small])[0].sr, small.sr)  # a member switch: the face as it is


def test_large_faces_take_less_of_a_past_face_that_disagrees() -> None:
    """A past face d Y levels brighter (a real change, or invented detail) counts exp(-(d/12)^2) for a small face
    and exp(-(d/6)^2) for one whose landmark extent in the frame is above ``large_extent`` px: large faces flicker
    little, so what disagrees there is more likely a face that moved (a mouth, a blink) than detail to average."""
    head = (_head() * 0.8 + 20).astype(np.uint8)  # nothing brightened past 255
    pulls = {}
    for side in (16.0, 128.0):  # landmark extent 8.5 / 68 frame px
        fusion = TemporalFusion(CAUSAL)
        brighter = head + np.uint8(9)
        _now(fusion, 0, [replace(_face(brighter, 0), box=(0.0, 0.0, side, side))])
        now = replace(_face(head, 1), box=(0.0, 0.0, side, side))
        out = _now(fusion, 1, [now])[0]
        inner = np.s_[16:-16, 16:-16]
        pulls[side] = float(out.sr[inner].astype(np.float32).mean() - head[inner].astype(np.float32).mean())
    cfg, d = FusionConfig(), 9 * float(Y_WEIGHTS.sum())  # +9 in R, G and B is +7.7 in Y
    for side, tolerance in ((16.0, cfg.tolerance), (128.0, cfg.large_tolerance)):
        w = cfg.weight * np.exp(-((d / tolerance) ** 2))
        assert pulls[side] == pytest.approx(9 * w / (1 + w), abs=0.25)  # resampling adds ~1 level here and there
    assert pulls[128.0] < 0.4 * pulls[16.0]


def _deformed(head: np.ndarray, amount: float) -> np.ndarray:
    """``head`` (128, 128, 3) with its lower face pulled down by up to ``amount`` px (a mouth opening)."""
    grid = np.mgrid[0:HR_SIZE, 0:HR_SIZE].astype(np.float32)  # (2, H, W): y, x
    pull = amount * np.exp(-((grid[1] - 64) ** 2 + (grid[0] - 92) ** 2) / (2 * 14.0 ** 2))
    return cv2.remap(head, grid[1], grid[0] - pull, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_a_large_face_that_deforms_is_carried_along_its_flow() -> None:
    """A large face whose mouth opens over the frames (its affine carry is right outside the mouth, wrong inside):
    the optical flow from the current face to each carried one moves the mouth with it, so fusion averages the
    noise there too instead of holding the past faces back; the face as it is now, not a ghost of the past."""
    head, rng = _head().astype(np.float32), np.random.default_rng(1)
    mouth = np.s_[72:112, 40:88]
    errors = {}
    for flow in (False, True):
        fusion = TemporalFusion(replace(CAUSAL, large_flow=flow))
        errors[flow] = []
        for t in range(8):
            clean = _deformed(head, 1.5 * t)
            noisy = np.clip(clean + rng.normal(0, 4, clean.shape) + 0.5, 0, 255).astype(np.uint8)
            face = replace(_face(noisy, t), box=(0.0, 0.0, 128.0, 128.0))  # landmark extent 68 frame px: large
            out = _now(fusion, t, [face])[0]
            errors[flow].append(np.abs(out.sr[mouth].astype(np.float32) - clean[mouth]).mean())
    noise = 4 * np.sqrt(2 / np.pi)  # the mean absolute error of the noisy face itself
    assert np.mean(errors[True][3:]) < 0.9 * np.mean(errors[False][3:]) and np.mean(errors[False][3:]) < noise
    assert np.mean(errors[True][3:]) < 0.8 * noise


def test_the_flow_undoes_what_the_affine_carry_missed() -> None:
    """A face carried 3 px off by its affine map (a registration error) is brought back onto the current face, at
    the 128-px crop's size and at a larger member's (256 px: the flow is found at 128 and enlarged)."""
    for size in (HR_SIZE, 256):
        head = resize_bicubic(astronaut_faces()[0].head, size).astype(np.float32)
        fine = cv2.resize(head, (2 * size, 2 * size), interpolation=cv2.INTER_CUBIC)
        m = np.array([[1, 0, 3.0 * size / HR_SIZE], [0, 1, 0.0]]) @ fusion_module._FINE_TO_CROP
        carried = cv2.warpAffine(fine, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        on_crop = np.array([[1, 0, 3.0], [0, 1, 0.0]])
        luma = fusion_module.crop_luma(head)
        moved, covered = fusion_module.FlowCarry(luma, size).carry(fine, m, luma, on_crop)
        inner = np.s_[size // 8:-size // 8, size // 8:-size // 8]
        assert np.abs(moved - head)[inner].mean() < 0.25 * np.abs(carried - head)[inner].mean()
        assert covered[inner].all() and moved.shape == head.shape
