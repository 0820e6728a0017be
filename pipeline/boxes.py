"""Box geometry shared by tracking and detection (no heavy imports: the CLI loads it for --help)."""

from __future__ import annotations

import numpy as np


def _area(r: np.ndarray) -> np.ndarray:
    return (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shape: (N, 4), (M, 4) boxes x1y1x2y2 -> (N, M) areas of their intersections."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shape: (N, 4), (M, 4) boxes x1y1x2y2 -> (N, M) intersection over union."""
    inter = _intersection(a, b)
    return inter / np.maximum(_area(a)[:, None] + _area(b)[None, :] - inter, 1e-9)


def covered_fraction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shape: (N, 4), (M, 4) boxes x1y1x2y2 -> (N, M) the fraction of each box of ``a`` inside each box of ``b``."""
    return _intersection(a, b) / np.maximum(_area(a), 1e-9)[:, None]
