"""Evaluation metrics in DIC's protocol: Y-channel PSNR/SSIM with a border crop, landmark NME; and the fine detail
of a face (std of the Laplacian of Y inside the face), which a PSNR-trained network loses and a viewer sees.

Y is BT.601 as MATLAB's ``rgb2ycbcr`` computes it, kept as float (not rounded): Y = 16 + (65.481 R + 128.553 G
+ 24.966 B) / 255 for 8-bit RGB. SSIM uses an 11x11 Gaussian window (sigma 1.5) over the valid region, with
C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 255.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DEFAULT_CROP = 8  # px removed at each border before PSNR/SSIM, as in DIC's evaluation
# DIC's "inter-ocular" normaliser: 0-based points 37 and 46 (upper eyelids) of the iBUG 68 layout.
INTEROCULAR_POINTS_68 = (37, 46)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Shape: (H, W, 3) uint8 RGB -> (H, W) float64 Y in [16, 235]."""
    return image.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0


def _prepare(a: np.ndarray, b: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    ya, yb = (rgb_to_y(a), rgb_to_y(b)) if a.ndim == 3 else (a.astype(np.float64), b.astype(np.float64))
    if crop:
        ya, yb = ya[crop:-crop, crop:-crop], yb[crop:-crop, crop:-crop]
    return ya, yb


def psnr_y(a: np.ndarray, b: np.ndarray, crop: int = DEFAULT_CROP) -> float:
    """PSNR (dB) on Y of two uint8 RGB images (or on two grey images), border ``crop`` px removed."""
    ya, yb = _prepare(a, b, crop)
    mse = float(np.mean((ya - yb) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim_y(a: np.ndarray, b: np.ndarray, crop: int = DEFAULT_CROP) -> float:
    """Gaussian SSIM on Y of two uint8 RGB images (or on two grey images), border ``crop`` px removed."""
    ya, yb = _prepare(a, b, crop)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]  # valid region only

    mu_a, mu_b = blur(ya), blur(yb)
    var_a = blur(ya * ya) - mu_a**2
    var_b = blur(yb * yb) - mu_b**2
    cov = blur(ya * yb) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


FACE_REGION = np.s_[16:112, 16:112]  # the face inside DIC's 128-px crop (face ~90 px): its central 96 px


def laplacian_std(image: np.ndarray) -> float:
    """Std of the Laplacian (3x3, 4-neighbour) of Y of an (H, W, 3) uint8 RGB image: its fine detail. Compared with
    the true face's it says how much of its fine detail an output shows: a blurred face scores low, a noisy one
    high (so it is read next to PSNR, GMSD and identity, never alone)."""
    return float(cv2.Laplacian(rgb_to_y(image), cv2.CV_64F, ksize=1).std())


def fine_detail(image: np.ndarray) -> float:
    """``laplacian_std`` inside the face of a 128-px face crop, (128, 128, 3) uint8 RGB."""
    return laplacian_std(image[FACE_REGION])


GMSD_C = 170.0  # the constant of GMSD for 8-bit images (Xue et al., 2014)


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Gradient magnitude similarity deviation of ``a`` against the reference ``b`` (uint8 RGB, same size; Xue et
    al., IEEE TIP 2014): Y averaged 2x2 and subsampled, Prewitt gradient magnitudes, their per-pixel similarity
    (2 g_a g_b + c) / (g_a^2 + g_b^2 + c), and its standard deviation. 0 for identical images; lower is closer as
    a viewer judges (a full-reference perceptual index that needs no learned weights)."""
    ya, yb = (cv2.resize(rgb_to_y(x), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for x in (a, b))
    prewitt = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], np.float64) / 3

    def magnitude(y: np.ndarray) -> np.ndarray:
        gx = cv2.filter2D(y, -1, prewitt, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(y, -1, prewitt.T, borderType=cv2.BORDER_REPLICATE)
        return np.sqrt(gx**2 + gy**2)

    ga, gb = magnitude(ya), magnitude(yb)
    return float(((2 * ga * gb + GMSD_C) / (ga**2 + gb**2 + GMSD_C)).std())


def landmark_nme(pred: np.ndarray, target: np.ndarray, pair: tuple[int, int] = INTEROCULAR_POINTS_68) -> float:
    """Mean point-to-point error divided by each face's inter-ocular distance, averaged over faces.

    Shape: pred, target (B, 68, 2) or (68, 2) xy in the same pixel frame -> scalar
    """
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.shape != t.shape:
        raise ValueError(f"landmark arrays differ in shape: {p.shape} vs {t.shape}")
    if p.ndim == 2:
        p, t = p[None], t[None]
    norm = np.linalg.norm(t[:, pair[0]] - t[:, pair[1]], axis=1)  # (B,)
    if np.any(norm <= 0):
        raise ValueError("inter-ocular distance is zero for at least one face")
    return float((np.linalg.norm(p - t, axis=2).mean(axis=1) / norm).mean())
