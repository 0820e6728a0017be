"""Faces that talk, blink and turn: landmark-driven piecewise-affine animation of a still head photo.

The benchmark clips pan rigid photos; real faces deform. ``animate`` moves a head's 68 landmarks as an expression
says (jaw and lower lip down as the mouth opens, upper lids down to the lower ones in a blink, the inner features
sideways in a small turn), warps the photo piecewise-affinely from its landmarks (and fixed points on the head's
border) to the moved ones, and darkens the open mouth's inside. The animated head and its moved landmarks are a
new ``FaceSource``, so the input and the ground truth of a clip are rendered from the same deformed photo and the
true landmarks follow the face in every frame (``talking``, the ``animation`` of ``examples.face_clip_frames``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dicface.pipeline.examples import FaceSource

LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
MOUTH_CORNERS = [48, 54, 60, 64]
LOWER_JAW = {5: 0.25, 6: 0.5, 7: 0.8, 8: 1.0, 9: 0.8, 10: 0.5, 11: 0.25}  # landmark: share of the jaw drop
UPPER_LIDS = {37: 41, 38: 40, 43: 47, 44: 46}  # upper-lid landmark: the lower-lid landmark below it
INNER = slice(17, 68)  # brows, nose, eyes, mouth: what shifts sideways in a turn
NOSE = slice(27, 36)


@dataclass(frozen=True)
class Expression:
    """How far a face is from its photo: ``mouth`` 0 (as photographed) .. 1 (open, the jaw dropped by 9 % of the
    landmarks' extent), ``blink`` 0 (as photographed) .. 1 (shut), ``turn`` -1 .. 1 (inner features shifted by
    -5 .. 5 % of the extent, the nose by half as much again)."""

    mouth: float = 0.0
    blink: float = 0.0
    turn: float = 0.0


def expression_at(t: int, face: int) -> Expression:
    """Face ``face``'s expression in frame ``t`` of a talking clip: syllables every ~5 frames (at 25 frames/s,
    5 a second), a blink of 3 frames every 23, a slow turn over 40 frames; each face out of phase with the
    others."""
    phase = 7 * face
    mouth = abs(np.sin(np.pi * (t + phase) / 5.0)) * (0.6 + 0.4 * np.sin((t + phase) / 7.0) ** 2)
    blink = {0: 0.6, 1: 1.0, 2: 0.5}.get((t + 3 * face) % 23, 0.0)
    turn = np.sin(2 * np.pi * (t + phase) / 40.0)
    return Expression(float(mouth), blink, float(turn))


def moved_landmarks(landmarks: np.ndarray, expression: Expression) -> np.ndarray:
    """The (68, 2) landmarks of a face with ``expression`` (x, y pixels of the same photo). "Down" is the face's
    own (from the eyes to the mouth), so a tilted head opens its mouth along its tilt."""
    points = landmarks.astype(np.float64).copy()
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    down = points[48:68].mean(axis=0) - points[36:48].mean(axis=0)
    down /= np.linalg.norm(down)
    across = np.array([down[1], -down[0]])  # the face's left-to-right axis
    drop = 0.09 * extent * expression.mouth
    points[LOWER_LIP] += drop * down
    points[MOUTH_CORNERS] += 0.4 * drop * down
    for index, share in LOWER_JAW.items():
        points[index] += share * drop * down
    for upper, lower in UPPER_LIDS.items():
        points[upper] += 0.9 * expression.blink * (points[lower] - points[upper])
    points[INNER] += 0.05 * extent * expression.turn * across
    points[NOSE] += 0.025 * extent * expression.turn * across
    return points


def _triangles(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Delaunay triangles (N, 3) of indices into ``points`` (N, 2), all inside the width x height image."""
    subdiv = cv2.Subdiv2D((0, 0, width, height))
    for x, y in points:
        subdiv.insert((float(x), float(y)))
    corners = subdiv.getTriangleList().reshape(-1, 2)
    gap = np.abs(corners[:, None] - points[None]).sum(axis=-1)  # (3N, points) L1 distance
    nearest = gap.argmin(axis=1)
    real = (gap.min(axis=1) < 1e-2).reshape(-1, 3).all(axis=1)  # not one of Subdiv2D's outer virtual vertices
    return nearest.reshape(-1, 3)[real]


def _border(width: int, height: int, per_side: int = 4) -> np.ndarray:
    """Points on the image border that stay put: ``per_side`` + 1 along each side (corners once)."""
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)[1:-1]
    return np.concatenate([
        np.stack([xs, np.zeros_like(xs)], 1), np.stack([xs, np.full_like(xs, height - 1)], 1),
        np.stack([np.zeros_like(ys), ys], 1), np.stack([np.full_like(ys, width - 1), ys], 1),
    ])


def warp_piecewise(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Warp (H, W, 3) ``image`` so that its points ``source`` (N, 2) land on ``target`` (N, 2), affinely inside
    each triangle of the targets' Delaunay triangulation (the image border held fixed)."""
    height, width = image.shape[:2]
    border = _border(width, height)
    src = np.concatenate([source, border]).astype(np.float32)
    dst = np.concatenate([target, border]).astype(np.float32)
    dst_inside = dst.copy()
    dst_inside[:, 0] = dst_inside[:, 0].clip(0, width - 1)
    dst_inside[:, 1] = dst_inside[:, 1].clip(0, height - 1)
    out = image.copy()
    for tri in _triangles(dst_inside, width, height):
        corners = dst_inside[tri]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (width, height))
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)  # only the triangle's bounding box is warped
        points = np.round(corners * 16).astype(np.int32) - 16 * np.int32([x0, y0])
        cv2.fillConvexPoly(mask, points, 1, cv2.LINE_8, shift=4)
        if not mask.any():
            continue
        affine = cv2.getAffineTransform(corners, src[tri])  # output pixel -> where to read it
        affine[:, 2] += affine[:, :2] @ (x0, y0)  # ... counted from the box's corner
        warped = cv2.warpAffine(image, affine, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
        inside = mask.astype(bool)
        out[y0:y1, x0:x1][inside] = warped[inside]
    return out


def _darken_mouth(image: np.ndarray, inner_lips: np.ndarray, opening: float) -> np.ndarray:
    """Shade the inside of the mouth (the inner-lip polygon, (8, 2)) dark as it opens (soft edge)."""
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(inner_lips * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.8) * min(1.0, 1.5 * opening)
    inside = np.array([45, 22, 24], np.float32)  # a dark, reddish mouth cavity
    return (image * (1 - mask[..., None]) + inside * mask[..., None]).round().clip(0, 255).astype(np.uint8)


def animate(source: FaceSource, expression: Expression) -> FaceSource:
    """The head of ``source`` with ``expression``: warped photo and moved landmarks (same size and pixels)."""
    target = moved_landmarks(source.landmarks, expression)
    head = warp_piecewise(source.head, source.landmarks, target)
    if expression.mouth > 0.05:
        head = _darken_mouth(head, target[60:68], expression.mouth)
    return FaceSource(head, target.astype(np.float32))


def talking(source: FaceSource, t: int, face: int) -> FaceSource:
    """``examples.Animation`` of a talking face: face ``face``'s photo with its expression in frame ``t``."""
    return animate(source, expression_at(t, face))
