from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from dicface.configs.video import AlignConfig
from dicface.models.faces import from_crop_coords, square_box
from dicface.pipeline.align import Aligner, members, route
from dicface.pipeline.types import Frame, TrackState

SHAPE = np.stack([np.cos(np.linspace(0, 6, 68)), np.sin(np.linspace(0, 6, 68))], axis=1).astype(np.float32)


def state(centre: tuple[float, float], width: float, confirmed: bool = True, tid: int = 1) -> TrackState:
    pts = (SHAPE * width / 2 + centre).astype(np.float32)
    x, y = centre
    return TrackState(tid, (x - width / 2, y - width / 2, x + width / 2, y + width / 2), pts, confirmed, 0)


@pytest.fixture
def frame() -> Frame:
    rng = np.random.default_rng(0)
    return Frame(3, 3, Fraction(1, 25), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))


GEOMETRY = AlignConfig(max_face_px=64)  # the geometry tests use faces wider than the default size policy
FAMILY = (16, 32, 64)


def test_crop_is_the_training_box_and_maps_back_exactly(frame: Frame) -> None:
    track = state((80.3, 60.7), 24.0)
    (crop,) = Aligner(GEOMETRY, FAMILY)(frame, [track])
    assert crop.box == square_box(track.landmarks) and crop.lr.shape == (32, 32, 3)  # a 37-px crop -> 32
    assert crop.frame_index == 3 and crop.track_id == 1
    back = from_crop_coords(crop.seed, crop.box)
    assert np.abs(back - track.landmarks).max() < 1e-3  # crop -> uncrop within 0.5 px (exact here)
    assert crop.seed.min() > 0 and crop.seed.max() < 128


def test_each_face_goes_to_the_member_that_fits_it() -> None:
    # reduced by at most 1.3x, enlarged as little as possible; too large for every member: left alone
    assert [route(px, FAMILY, 1.3) for px in (8, 20.8, 21, 41.6, 42, 83.2, 84)] == [16, 16, 32, 32, 64, 64, None]
    assert route(30, (16,), 1.3) is None and route(30, (16,), 2.0) == 16
    # with the x2 member for large faces (96-px input): crops of 84-124 px go to it
    assert [route(px, (*FAMILY, 96), 1.3) for px in (83.2, 84, 124.8, 125)] == [64, 96, 96, None]


def test_a_face_keeps_its_member_near_a_boundary() -> None:
    # a 42-px crop: the 64-px member for a new face, the 32-px one kept for a face that had it (within 10 %)
    assert route(42, FAMILY, 1.3) == 64 and route(42, FAMILY, 1.3, previous=32, hysteresis=0.1) == 32
    assert route(46, FAMILY, 1.3, previous=32, hysteresis=0.1) == 64  # past the margin: switched
    assert route(40, FAMILY, 1.3, previous=64, hysteresis=0.1) == 64 and route(37, FAMILY, 1.3, 64, 0.1) == 32
    assert route(90, FAMILY, 1.3, previous=64, hysteresis=0.1) == 64 and route(92, FAMILY, 1.3, 64, 0.1) is None
    assert route(42, FAMILY, 1.3, previous=32) == 64  # no hysteresis: the plain rule


def test_crops_are_sized_for_their_member(frame: Frame) -> None:
    tracks = [state((40.0, 40.0), 10.0, tid=1), state((80.0, 60.0), 20.0, tid=2), state((80.0, 60.0), 40.0, tid=3),
              state((80.0, 60.0), 60.0, tid=4)]
    crops = Aligner(replace(GEOMETRY, min_input=16), FAMILY)(frame, tracks)
    assert [(c.track_id, c.lr.shape[0]) for c in crops] == [(1, 16), (2, 32), (3, 64)]  # crop 93 px: too large
    crops = Aligner(GEOMETRY, FAMILY)(frame, tracks)  # by default the 16-px member only when it is alone
    assert [(c.track_id, c.lr.shape[0]) for c in crops] == [(1, 32), (2, 32), (3, 64)]
    assert [c.lr.shape[0] for c in Aligner(GEOMETRY, (16,))(frame, tracks)] == [16]  # --scale 8


def test_size_policy_and_hysteresis(frame: Frame) -> None:
    aligner = Aligner(AlignConfig(min_face_px=10, max_face_px=40), FAMILY)
    tracks = [state((40, 40), 6, tid=1), state((80, 60), 24, tid=2), state((100, 60), 70, tid=3),
              state((60, 60), 20, confirmed=False, tid=4)]
    assert [c.track_id for c in aligner(frame, tracks)] == [2]
    with pytest.raises(ValueError):
        AlignConfig(min_face_px=50, max_face_px=40)
    # a face enhanced in the previous frame stays enhanced (and keeps its member) within 10 % past the bounds
    aligner = Aligner(AlignConfig(min_face_px=10, max_face_px=40, hysteresis=0.1), FAMILY)
    near = [state((80, 60), 42, tid=2), state((40, 40), 9.5, tid=5)]
    assert aligner(frame, near) == []  # new faces: outside the bounds
    before = members(aligner(frame, [state((80, 60), 39, tid=2), state((40, 40), 10.5, tid=5)]))
    assert before == {2: 64, 5: 32}
    assert members(aligner(frame, near, before)) == before
    assert aligner(frame, [state((80, 60), 45, tid=2)], before) == []  # past the margin


def test_faces_on_the_frame_border_are_padded(frame: Frame) -> None:
    (crop,) = Aligner(GEOMETRY, FAMILY)(frame, [state((2.0, 118.0), 30.0)])
    assert crop.box[0] < 0 and crop.box[3] > 120 and crop.lr.shape == (64, 64, 3)


def test_box_only_tracks_get_a_box_crop(frame: Frame) -> None:
    track = TrackState(5, (70, 50, 90, 70), None, True, 0)
    (crop,) = Aligner(GEOMETRY, FAMILY)(frame, [track])
    assert crop.seed is None and crop.box[2] - crop.box[0] == pytest.approx(20 * 1.55)


def test_the_default_size_policy_keeps_only_faces_dic_improves() -> None:
    frame = Frame(0, 0, Fraction(1, 25), np.zeros((100, 200, 3), np.uint8))
    small, large = state((50.0, 50.0), 12.0, tid=1), state((150.0, 50.0), 30.0, tid=2)
    crops = Aligner()(frame, [small, large])
    assert [c.track_id for c in crops] == [small.track_id]  # a 30-px face would lose detail through 16 px
