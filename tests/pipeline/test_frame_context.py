"""Earlier crops for multi-frame DIC members: registered onto the current crop, the current crop where missing."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from dicface.models.faces import HR_SIZE, resize_bicubic
from dicface.pipeline.examples import astronaut_faces
from dicface.pipeline.frame_context import FrameContext
from dicface.pipeline.types import FaceCrop

SEED = np.stack(np.meshgrid(np.linspace(30, 98, 17), np.linspace(40, 100, 4)), -1).reshape(-1, 2)[:68]
HEAD = resize_bicubic(astronaut_faces()[0].head, HR_SIZE)


def _crop(index: int, shift: tuple[float, float], track: int = 1, size: int = 32) -> FaceCrop:
    """The face moved by ``shift`` 128-px crop pixels, cropped to ``size`` px; its landmarks jitter by a pixel."""
    moved = cv2.warpAffine(HEAD, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (HR_SIZE, HR_SIZE),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    jitter = np.random.default_rng(index).normal(0, 1.0, 2)
    return FaceCrop(index, track, (0.0, 0.0, 32.0, 32.0), resize_bicubic(moved, size),
                    (SEED + shift + jitter).astype(np.float32))


def test_earlier_crops_are_carried_onto_the_current_ones_grid() -> None:
    context = FrameContext({32: 3})
    inner = np.s_[4:-4, 4:-4]
    for t in range(6):
        crop = context([_crop(t, (2.0 * t, -1.0 * t))])[0]
        assert crop.context is not None and crop.context.shape == (2, 32, 32, 3)
        if t >= 2:
            now = crop.lr[inner].astype(float)
            for age, earlier in enumerate(crop.context, start=1):
                raw = _crop(t - age, (2.0 * (t - age), -1.0 * (t - age))).lr
                assert np.abs(earlier[inner] - now).mean() < 0.5 * np.abs(raw[inner] - now).mean()


def test_missing_crops_are_the_current_one() -> None:
    context = FrameContext({32: 3})
    first = context([_crop(0, (0.0, 0.0))])[0]
    assert all(np.array_equal(c, first.lr) for c in first.context)  # a track's first frame
    second = context([_crop(1, (1.0, 0.0))])[0]
    assert not np.array_equal(second.context[0], second.lr) and np.array_equal(second.context[1], second.lr)
    after_gap = context([_crop(3, (3.0, 0.0))])[0]  # frame 2 missed: nothing carried across the gap
    assert all(np.array_equal(c, after_gap.lr) for c in after_gap.context)
    resized = context([_crop(4, (4.0, 0.0), size=64)])  # another member's size, a single-frame member
    assert resized[0].context is None
    unseeded = context([replace(_crop(5, (5.0, 0.0)), seed=None)])
    assert unseeded[0].context is None


def test_single_frame_members_keep_nothing_and_tracks_do_not_mix() -> None:
    assert FrameContext({32: 1})([_crop(0, (0.0, 0.0))])[0].context is None
    context = FrameContext({32: 2})
    context([_crop(0, (0.0, 0.0), track=1), _crop(0, (0.0, 0.0), track=2)])
    one, two = context([_crop(1, (1.0, 0.0), track=1), replace(_crop(1, (1.0, 0.0), track=2), lr=np.zeros(
        (32, 32, 3), np.uint8))])
    assert not np.array_equal(one.context[0], two.context[0])
    assert np.abs(one.context[0].astype(int) - one.lr).mean() < 3  # its own track's face, carried


def test_a_step_far_from_the_landmarks_motion_is_not_carried() -> None:
    """The face moves 6 crop px while its landmarks say it stood still: carried within the run's max_motion (0.15 of
    the crop, 19 px), not within 0.02 (2.6 px)."""
    def second(max_motion: float) -> FaceCrop:
        context = FrameContext({32: 2}, max_motion)
        context([_crop(0, (0.0, 0.0))])
        return context([replace(_crop(1, (6.0, 0.0)), seed=_crop(0, (0.0, 0.0)).seed)])[0]

    carried, dropped = second(0.15), second(0.02)
    assert not np.array_equal(carried.context[0], carried.lr)
    assert np.array_equal(dropped.context[0], dropped.lr)
