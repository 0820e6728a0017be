"""Temporal fusion of a track's super-resolved faces, in the aligned face frame.

DIC sees one frame at a time, so the detail it invents for a 20-40 px face changes from frame to frame (flicker),
and each frame's crop samples the face at another sub-pixel phase. Here each track keeps its last ``frames`` SR
faces (128-px crops); each is carried into the current crop once, by the similarity transform between its tracked
landmarks and the current ones (bicubic; never re-warped, so nothing blurs frame after frame), and averaged with
the current SR face:

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
            fused = self._fuse(current, face.seed, face.frame_index, history) if history and face.seed is not None \
                else face.sr
            if face.seed is None or self.cfg.weight == 0:
                self._past.pop(face.track_id, None)
            else:
                kept = history if history is not None else deque(maxlen=self.cfg.frames)
                kept.append(_Past(face.frame_index, face.seed, current))
                self._past[face.track_id] = kept
            out.append(replace(face, sr=fused))
        self._past = {k: h for k, h in self._past.items() if h[-1].frame_index == frame_index}  # ended: forgotten
        return out

    def _fuse(self, current: np.ndarray, seed: np.ndarray, index: int, history: deque[_Past]) -> np.ndarray:
        """(128, 128, 3) uint8: the current SR face averaged with the ``history`` carried into its crop (a history
        is kept only with ``weight`` > 0)."""
        size, centre = (HR_SIZE, HR_SIZE), np.float32([HR_SIZE / 2, HR_SIZE / 2])
        total, weights = current.copy(), np.ones(size, np.float32)
        for past in history:
            m = crop_motion(past.seed, seed)
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
