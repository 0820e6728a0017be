"""Face pre- and post-processing as DIC was trained: square landmark box, PIL bicubic 128 px, then 16 px.

Images are ``(H, W, 3) uint8 RGB`` arrays; model tensors are ``(B, 3, H, W)`` float RGB in [0, 1] minus the
CelebA mean (std 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

CELEBA_MEAN = (0.509, 0.424, 0.378)
HR_SIZE = 128
LR_SIZE = 16


def resize_bicubic(image: np.ndarray, size: int | tuple[int, int], box: Sequence[float] | None = None) -> np.ndarray:
    """PIL's antialiased bicubic resize of a uint8 image, optionally of the sub-pixel region ``box``.

    Args:
        image: (H, W, 3) or (H, W) uint8.
        size: output side, or (width, height).
        box: optional (x1, y1, x2, y2) source region in pixels (floats allowed; may not leave the image).
    Returns:
        (h, w, 3) or (h, w) uint8.
    """
    if image.dtype != np.uint8:
        raise TypeError(f"resize_bicubic takes uint8 images, got {image.dtype}")
    wh = (size, size) if isinstance(size, int) else tuple(size)
    out = Image.fromarray(image).resize(wh, resample=Image.Resampling.BICUBIC, box=None if box is None else tuple(box))
    return np.asarray(out)


def hr_and_lr(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DIC's training pair from a square face crop: HR = PIL bicubic to 128, LR = PIL bicubic 128 -> 16.

    A crop of any size is accepted (non-square crops are resized to square, as DIC's aspect jitter does).

    Shape: (H, W, 3) uint8 -> ((128, 128, 3) uint8, (16, 16, 3) uint8)
    """
    hr = face if face.shape[:2] == (HR_SIZE, HR_SIZE) else resize_bicubic(face, HR_SIZE)
    return hr, resize_bicubic(hr, LR_SIZE)


def lr_from_face(face: np.ndarray) -> np.ndarray:
    """The 16x16 input DIC expects for a face crop of any size.

    Crops larger than 16 px go through the training path (128 px, then 16 px); smaller crops are resized to 16
    directly, since an upscaled detour adds no information.

    Shape: (H, W, 3) uint8 -> (16, 16, 3) uint8
    """
    if face.ndim != 3 or face.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB face, got shape {face.shape}")
    if min(face.shape[:2]) <= LR_SIZE:
        return resize_bicubic(face, LR_SIZE)
    return hr_and_lr(face)[1]


def square_box(landmarks: np.ndarray, scale: float = 1.0) -> tuple[float, float, float, float]:
    """The square, axis-aligned box around 68 landmarks (side = the larger extent times ``scale``).

    Shape: landmarks (68, 2) xy -> (x1, y1, x2, y2)
    """
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    cx, cy = (lo + hi) / 2.0
    half = float((hi - lo).max()) * scale / 2.0
    return (float(cx) - half, float(cy) - half, float(cx) + half, float(cy) + half)


def normalise(images: np.ndarray | Sequence[np.ndarray]) -> Tensor:
    """uint8 RGB images to the model's input space.

    Shape: (B, H, W, 3) or (H, W, 3) uint8 -> (B, 3, H, W) float32, [0, 1] minus the CelebA mean
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)
    return t - torch.tensor(CELEBA_MEAN).view(1, 3, 1, 1)


def denormalise(images: Tensor) -> np.ndarray:
    """Model-space tensors back to uint8 RGB (add the mean, x255, clamp, round).

    Shape: (B, 3, H, W) float -> (B, H, W, 3) uint8
    """
    mean = torch.tensor(CELEBA_MEAN, device=images.device).view(1, 3, 1, 1)
    out = ((images.detach().float() + mean) * 255.0).clamp(0, 255).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()
