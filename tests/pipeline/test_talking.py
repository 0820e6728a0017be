from __future__ import annotations

import numpy as np
import pytest

from dicface.pipeline.examples import FaceSource, astronaut_faces, face_clip_frames
from dicface.pipeline.talking import Expression, animate, expression_at, moved_landmarks, talking, warp_piecewise


@pytest.fixture(scope="module")
def astronaut() -> FaceSource:
    return astronaut_faces()[0]


def test_expressions_move_the_parts_they_name_and_nothing_else(astronaut: FaceSource) -> None:
    points = astronaut.landmarks.astype(np.float64)
    extent = (points.max(axis=0) - points.min(axis=0)).max()
    still = moved_landmarks(points, Expression())
    np.testing.assert_allclose(still, points)
    talking_face = moved_landmarks(points, Expression(mouth=1.0))
    lowered = talking_face - points
    assert 0.08 * extent < lowered[57, 1] < 0.1 * extent  # the lower lip's middle drops ~9 % of the extent
    kept = [*range(5), *range(12, 48), *range(49, 54)]  # contour but the chin's, brows, nose, eyes, upper lip
    np.testing.assert_allclose(lowered[kept], 0)
    shut = moved_landmarks(points, Expression(blink=1.0))
    gap_before, gap_after = points[41, 1] - points[37, 1], shut[41, 1] - shut[37, 1]
    assert abs(gap_after) < 0.15 * abs(gap_before)
    turned = moved_landmarks(points, Expression(turn=1.0)) - points
    assert turned[30, 0] > turned[36, 0] > 0.04 * extent  # the nose more than the eyes
    np.testing.assert_allclose(turned[:17], 0)  # the contour stays


def test_the_warp_carries_each_pixel_to_its_landmarks_new_place() -> None:
    """A ramp image (red = x, green = y) warped so that points move: at a point's new place, the colour says where
    it came from; pixels far from every moved point stay as they were."""
    height, width = 120, 100
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = np.stack([xs * 2, ys * 2, np.zeros_like(xs)], -1).astype(np.uint8)
    source = np.float32([[30, 40], [70, 40], [50, 70], [35, 95], [65, 95]])
    target = source + np.float32([[0, 0], [0, 0], [6, 4], [0, 0], [0, 0]])
    out = warp_piecewise(ramp, source, target)
    moved = out[74, 56].astype(float) / 2  # the point's new pixel
    np.testing.assert_allclose(moved[:2], [50, 70], atol=1.0)
    np.testing.assert_array_equal(out[5:20, 5:20], ramp[5:20, 5:20])


def test_talking_clips_deform_the_faces_and_the_truth_follows(astronaut: FaceSource) -> None:
    frames, truth = face_clip_frames(8, 200, 120, [40], sources=[astronaut], animation=talking)
    _, big_truth = face_clip_frames(8, 200, 120, [40], scale=2, sources=[astronaut], animation=talking)
    still, still_truth = face_clip_frames(8, 200, 120, [40], sources=[astronaut])
    np.testing.assert_allclose(big_truth, (truth + 0.5) * 2 - 0.5, atol=0.05)  # one scene at two scales
    deformation = np.abs(truth - still_truth).max(axis=(1, 2, 3))
    assert deformation.max() > 1.0 and np.count_nonzero(deformation > 0.3) >= 4
    assert any(not np.array_equal(a, b) for a, b in zip(frames, still, strict=True))
    assert len({expression_at(t, 0) for t in range(24)}) > 12  # the expression changes from frame to frame
    assert animate(astronaut, Expression()).head.shape == astronaut.head.shape
