"""Whole-pipeline quality against ground truth: ``dicface bench quality``.

A clip of real faces is rendered twice from the same sources and motion (``pipeline.examples``): at 1x as the
input and at Kx as the ground truth. Each method's Kx output is scored in the faces' regions only: PSNR-Y and
SSIM-Y per face and frame, and the temporal error: a face's change from the previous frame, moved by its true
motion (rounded to whole pixels), compared with the ground truth's change over the same pair: mean |output change
- true change| (0 = every frame-to-frame change is the true one; made-up flicker and missed true change both
count); and what a viewer sees of each face: its fine detail against the truth's, GMSD, and whether it is still
the same person (dlib's identity distance to the true face).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from dicface.models.identity import FaceIdentity
from dicface.models.metrics import gmsd, laplacian_std, psnr_y, rgb_to_y, ssim_y


@dataclass(frozen=True)
class VideoScore:
    psnr: float
    ssim: float
    temporal: float
    detail: float  # the faces' fine detail relative to the truth's (``models.metrics.laplacian_std``; 1: as much)
    gmsd: float  # gradient magnitude similarity deviation from the truth (lower: closer, as a viewer judges)
    identity: float  # dlib identity distance to the true face (``models.identity``; lower: the same person)


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def face_regions(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.25) -> np.ndarray:
    """Integer boxes (T, F, 4) x1 y1 x2 y2 around each face's landmarks (T, F, 68, 2), grown by ``margin`` of their
    extent per side and clipped to the frame (H, W)."""
    low, high = landmarks.min(axis=2), landmarks.max(axis=2)
    pad = margin * (high - low).max(axis=-1, keepdims=True)
    boxes = np.concatenate([np.floor(low - pad), np.ceil(high + pad) + 1], axis=-1).astype(int)
    boxes[..., [0, 2]] = boxes[..., [0, 2]].clip(0, shape[1])
    boxes[..., [1, 3]] = boxes[..., [1, 3]].clip(0, shape[0])
    return boxes


def _motion_residual(frames: list[np.ndarray], t: int, box: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Y of a face region in frame t minus the same content in frame t-1, ``shift`` px earlier (2-D float)."""
    x1, y1, x2, y2 = box
    dx, dy = int(shift[0]), int(shift[1])
    h, w = frames[t].shape[:2]
    x1, y1 = max(x1, dx, 0), max(y1, dy, 0)
    x2, y2 = min(x2, w + dx, w), min(y2, h + dy, h)
    now = rgb_to_y(frames[t][y1:y2, x1:x2])
    before = rgb_to_y(frames[t - 1][y1 - dy : y2 - dy, x1 - dx : x2 - dx])
    return now - before


def score_video(output: list[np.ndarray], truth: list[np.ndarray], landmarks: np.ndarray) -> VideoScore:
    """Score output frames against ground-truth frames (same size, (H, W, 3) uint8) in the faces' regions
    (``landmarks``: (T, F, 68, 2) true landmarks in those frames)."""
    if len(output) != len(truth) or output[0].shape != truth[0].shape:
        raise ValueError(f"{len(output)} frames of {output[0].shape} vs {len(truth)} of {truth[0].shape}")
    boxes = face_regions(landmarks, truth[0].shape[:2])
    motion = np.round(np.diff(landmarks.mean(axis=2), axis=0))  # (T-1, F, 2) whole-pixel face motion
    identity = FaceIdentity()
    psnrs, ssims, temporal, detail, truth_detail, gmsds, identities = [], [], [], [], [], [], []
    for t in range(len(truth)):
        for f, (x1, y1, x2, y2) in enumerate(boxes[t]):
            face, true_face = output[t][y1:y2, x1:x2], truth[t][y1:y2, x1:x2]
            psnrs.append(psnr_y(face, true_face, 0))
            ssims.append(ssim_y(face, true_face, 0))
            detail.append(laplacian_std(face))
            truth_detail.append(laplacian_std(true_face))
            gmsds.append(gmsd(face, true_face))
            identities.append(identity.distance(face, true_face, landmarks[t, f] - np.float32([x1, y1])))
            if t:
                shift = motion[t - 1, f]
                change = _motion_residual(output, t, boxes[t, f], shift)
                true_change = _motion_residual(truth, t, boxes[t, f], shift)
                temporal.append(float(np.abs(change - true_change).mean()))
    return VideoScore(float(np.mean(psnrs)), float(np.mean(ssims)), float(np.mean(temporal)),
                      float(np.sum(detail) / max(np.sum(truth_detail), 1e-9)), float(np.mean(gmsds)),
                      float(np.mean(identities)))
