"""Temporal fusion of a track's super-resolved faces, in the aligned face frame.

DIC sees one frame at a time, so the detail it invents for a 20-40 px face changes from frame to frame (flicker),
and each frame's crop samples the face at another sub-pixel phase. Here each track keeps its last ``frames`` SR
faces (128-px crops); each is carried into the current crop once (bicubic; never re-warped, so nothing blurs frame
after frame) and averaged with the current SR face. The map that carries it comes from the LR crops DIC was given:
each frame's crop is registered onto the previous one -- scaled by the two crop boxes' sides, shifted by ECC on Y
within the face's landmark box, starting from the landmarks' mean motion -- and the steps are chained. A small
face's tracked landmarks jitter by pixels of the 128-px crop from frame to frame; the registered shift is within
half a pixel (``tests/pipeline/test_fusion.py``). Where registration is off or fails, the similarity fit of the
two crops' landmarks carries the face. Then

    fused = sum_k w_k * carried_k / sum_k w_k,   w_0 = 1,  w_k = weight^k * exp(-(d_k / tolerance)^2) per pixel,

with d_k the local |Y| disagreement of face k with the current one (Gaussian-smoothed), so where the face changed
(mouth, blink, occlusion, a wrong transform) the current frame wins. Nothing is carried into a track's first
frame, across a gap, past a scene cut (the tracker starts new tracks), where the carried face does not cover the
pixel, or from a face that moved or scaled by more than ``max_motion`` of the crop since.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from configs.video import FusionConfig
from models.faces import HR_SIZE
from pipeline.types import EnhancedFace

Y_WEIGHTS = np.array([65.481, 128.553, 24.966], np.float32) / 255.0


@dataclass(frozen=True)
class _Past:
    frame_index: int
    seed: np.ndarray  # (68, 2) tracked landmarks in that frame's 128-px crop
    sr: np.ndarray  # (128, 128, 3) float32 RGB, as DIC made it
    side: float  # the crop box's side, frame pixels
    lr: np.ndarray | None  # (S, S) float32 Y of the crop DIC was given
    to_last: np.ndarray | None = None  # (3, 3) that crop's 128-px frame -> the track's latest crop's, registered


def _lr_to_crop(size: int) -> np.ndarray:
    """(3, 3): pixel centres of an S-px crop -> the same points in the 128-px crop of the same box."""
    a = HR_SIZE / size
    return np.array([[a, 0.0, a / 2 - 0.5], [0.0, a, a / 2 - 0.5], [0.0, 0.0, 1.0]])


def register(before: np.ndarray, now: np.ndarray, guess: np.ndarray, seed: np.ndarray) -> np.ndarray | None:
    """Refine the shift of ``guess``, the affine map of crop ``before`` onto crop ``now`` (in their 128-px frames),
    by ECC on the two LR crops' Y within the landmark box of ``seed`` (the current crop's landmarks, 128-px
    frame); its linear part is kept. None where ECC does not converge.

    Shape: before, now (S, S) float32; guess (2, 3); seed (68, 2) -> (3, 3)
    """
    size = now.shape[0]
    a = _lr_to_crop(size)
    g = np.linalg.inv(a) @ np.vstack([guess, [0.0, 0.0, 1.0]]) @ a
    warp = np.linalg.inv(g)[:2].astype(np.float32)  # ECC maps its template (the face in ``now``) into ``before``
    points = (seed + 0.5) * size / HR_SIZE - 0.5
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int), 0, size - 2)
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int) + 1, (x0 + 2, y0 + 2), size)
    offset = np.array([x0, y0], np.float32)
    warp[:, 2] += warp[:, :2] @ offset  # template pixel (u, v) is pixel (u + x0, v + y0) of ``now``
    try:
        _, warp = cv2.findTransformECC(np.ascontiguousarray(now[y0:y1, x0:x1]), before, warp,
                                       cv2.MOTION_TRANSLATION,
                                       (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-5), None, 1)
    except cv2.error:
        return None
    warp[:, 2] -= warp[:, :2] @ offset
    return a @ np.linalg.inv(np.vstack([warp, [0.0, 0.0, 1.0]])) @ np.linalg.inv(a)


def crop_motion(before: np.ndarray, now: np.ndarray) -> np.ndarray | None:
    """The 2x3 similarity transform taking landmarks ``before`` (68, 2) onto ``now`` (68, 2), least squares."""
    m, _ = cv2.estimateAffinePartial2D(before.astype(np.float32), now.astype(np.float32), method=cv2.LMEDS)
    return m


class TemporalFusion:
    """Stateful, causal, per stream: call once per frame, in order, with that frame's faces (maybe none)."""

    def __init__(self, cfg: FusionConfig = FusionConfig()) -> None:
        self.cfg = cfg
        self._past: dict[int, deque[_Past]] = {}

    def reset(self) -> None:
        self._past.clear()

    def __call__(self, frame_index: int, faces: Sequence[EnhancedFace]) -> list[EnhancedFace]:
        out = []
        for face in faces:
            current = face.sr.astype(np.float32)
            history = self._past.get(face.track_id)
            if history and history[-1].frame_index != face.frame_index - 1:
                history = None  # a gap: the track's faces before it are not carried
            lr = None if face.lr is None else (face.lr.astype(np.float32) @ Y_WEIGHTS)
            if history and face.seed is not None:
                history = self._register(history, face.seed, lr, face.box[2] - face.box[0])
                fused = self._fuse(current, face.seed, face.frame_index, history)
            else:
                fused = face.sr
            if face.seed is None or self.cfg.weight == 0:
                self._past.pop(face.track_id, None)
            else:
                kept = history if history is not None else deque(maxlen=self.cfg.frames)
                kept.append(_Past(face.frame_index, face.seed, current, face.box[2] - face.box[0], lr,
                                  None if lr is None else np.eye(3)))
                self._past[face.track_id] = kept
            out.append(replace(face, sr=fused))
        self._past = {k: h for k, h in self._past.items() if h[-1].frame_index == frame_index}  # ended: forgotten
        return out

    def _register(self, history: deque[_Past], seed: np.ndarray, lr: np.ndarray | None, side: float) -> deque[_Past]:
        """The history with each face's ``to_last`` moved on to the current crop (None where registration is off
        or failed: those are carried by their landmarks). The step from the last crop to this one scales by the
        crop boxes' sides (a face does not change size between two frames; landmark-fitted scales jitter) and
        shifts by the landmarks' mean motion, refined by ECC (unless ECC moved it by more than ``max_motion``)."""
        last, step = history[-1], None
        if self.cfg.register and lr is not None and last.lr is not None and last.lr.shape == lr.shape:
            k = last.side / side
            shift = (seed - k * last.seed).mean(axis=0)
            step = register(last.lr, lr, np.array([[k, 0.0, shift[0]], [0.0, k, shift[1]]]), seed)
            if step is not None and np.abs(step[:2, 2] - shift).max() > self.cfg.max_motion * HR_SIZE:
                step = None  # ECC ran off (far from where the landmarks went): not trusted
        return deque((replace(p, to_last=None if step is None or p.to_last is None else step @ p.to_last)
                      for p in history), maxlen=history.maxlen)

    def _fuse(self, current: np.ndarray, seed: np.ndarray, index: int, history: deque[_Past]) -> np.ndarray:
        """(128, 128, 3) uint8: the current SR face averaged with the ``history`` carried into its crop (a history
        is kept only with ``weight`` > 0)."""
        size, centre = (HR_SIZE, HR_SIZE), np.float32([HR_SIZE / 2, HR_SIZE / 2])
        total, weights = current.copy(), np.ones(size, np.float32)
        for past in history:
            m = past.to_last[:2] if past.to_last is not None else crop_motion(past.seed, seed)
            if m is None:
                continue
            scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
            moved = float(np.linalg.norm(m[:, :2] @ centre + m[:, 2] - centre))
            if moved > self.cfg.max_motion * HR_SIZE or abs(scale - 1) > self.cfg.max_motion:
                continue
            carried = cv2.warpAffine(past.sr, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            covered = cv2.warpAffine(np.ones(size, np.float32), m, size, flags=cv2.INTER_LINEAR) > 0.999
            disagreement = cv2.GaussianBlur(np.abs((carried - current) @ Y_WEIGHTS), (0, 0), 1.5)
            weight = self.cfg.weight ** (index - past.frame_index) * np.exp(
                -((disagreement / self.cfg.tolerance) ** 2)) * covered
            total += weight[..., None] * carried
            weights += weight
        return np.clip(total / weights[..., None] + 0.5, 0, 255).astype(np.uint8)
