"""Landmark heatmaps: rendering, merging into facial components, sub-pixel decoding (pure functions).

Convention (as in DIC's training data): a landmark at (x, y) in the 128-px crop is a Gaussian centred at
(x / stride, y / stride) on the integer pixel grid of the 32x32 map, sigma 1, peak 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

HEATMAP_SIZE = 32
HEATMAP_STRIDE = 4  # 128-px crop -> 32-px heatmap

# 0-based iBUG 68-point groups merged into DIC's five component maps (silhouette = jaw and brows).
COMPONENT_GROUPS_68: tuple[tuple[int, int], ...] = ((36, 42), (42, 48), (27, 36), (48, 68), (0, 27))
COMPONENT_NAMES = ("left_eye", "right_eye", "nose", "mouth", "silhouette")


def render_heatmaps(
    landmarks: Tensor | np.ndarray,
    size: int = HEATMAP_SIZE,
    stride: float = HEATMAP_STRIDE,
    sigma: float = 1.0,
) -> Tensor:
    """Render one Gaussian per landmark.

    Shape:
        landmarks: (B, K, 2) or (K, 2) xy in crop pixels (the 128-px frame for the default stride)
        returns: (B, K, size, size) or (K, size, size) float32, peak 1 at each landmark
    """
    pts = torch.as_tensor(landmarks, dtype=torch.float32)
    single = pts.dim() == 2
    if single:
        pts = pts.unsqueeze(0)
    centre = pts / stride  # (B, K, 2)
    grid = torch.arange(size, dtype=torch.float32, device=pts.device)
    dx2 = (grid.view(1, 1, 1, size) - centre[..., 0, None, None]) ** 2  # (B, K, 1, size)
    dy2 = (grid.view(1, 1, size, 1) - centre[..., 1, None, None]) ** 2  # (B, K, size, 1)
    heat = torch.exp(-(dx2 + dy2) / (2.0 * sigma * sigma))
    return heat[0] if single else heat


def merge_to_five(heatmaps: Tensor) -> Tensor:
    """Merge 68 landmark heatmaps into DIC's five component maps (differentiable, input untouched).

    Each map is divided by its own spatial maximum (clamped below at 0.05), then maps are summed per group.

    Shape:
        heatmaps: (B, 68, H, W), or (B, 5, H, W) which is only normalised
        returns: (B, 5, H, W)
    """
    peak = heatmaps.amax(dim=(2, 3), keepdim=True).clamp(min=0.05)
    normalised = heatmaps / peak
    if normalised.shape[1] == 5:
        return normalised
    if normalised.shape[1] != 68:
        raise ValueError(f"merge_to_five needs 68 or 5 heatmaps, got {normalised.shape[1]}")
    return torch.stack([normalised[:, a:b].sum(dim=1) for a, b in COMPONENT_GROUPS_68], dim=1)


def decode_landmarks(heatmaps: Tensor, stride: float = HEATMAP_STRIDE) -> Tensor:
    """Sub-pixel landmark positions from heatmaps.

    The integer arg-max is refined per axis by fitting a parabola to the log heatmap at the peak and its two
    neighbours, which is exact for a Gaussian (render -> decode round-trips to < 0.01 px). Peaks on the border
    keep their integer position along that axis.

    Shape:
        heatmaps: (B, K, H, W)
        returns: (B, K, 2) float32 xy in crop pixels (heatmap coordinates times ``stride``)
    """
    heat = heatmaps.detach().float()
    b, k, h, w = heat.shape
    logs = heat.clamp(min=1e-10).log().reshape(b, k, h * w)
    idx = logs.argmax(dim=2)  # (B, K)
    ys, xs = idx // w, idx % w

    def at(y: Tensor, x: Tensor) -> Tensor:
        return logs.gather(2, (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)).unsqueeze(2)).squeeze(2)

    def refine(before: Tensor, peak: Tensor, after: Tensor, coord: Tensor, limit: int) -> Tensor:
        curvature = before - 2.0 * peak + after
        shift = 0.5 * (before - after) / curvature.clamp(max=-1e-12)
        inner = (coord > 0) & (coord < limit - 1) & (curvature < 0)
        return torch.where(inner, shift.clamp(-0.5, 0.5), torch.zeros_like(shift))

    peak = at(ys, xs)
    x = xs.float() + refine(at(ys, xs - 1), peak, at(ys, xs + 1), xs, w)
    y = ys.float() + refine(at(ys - 1, xs), peak, at(ys + 1, xs), ys, h)
    return torch.stack((x, y), dim=2) * stride
