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


def hr_and_lr(face: np.ndarray, lr_size: int = LR_SIZE, hr_size: int = HR_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """DIC's training pair from a square face crop: HR = PIL bicubic to ``hr_size`` (128), LR = PIL bicubic HR ->
    lr_size.

    A crop of any size is accepted (non-square crops are resized to square, as DIC's aspect jitter does).

    Shape: (H, W, 3) uint8 -> ((hr_size, hr_size, 3) uint8, (S, S, 3) uint8)
    """
    hr = face if face.shape[:2] == (hr_size, hr_size) else resize_bicubic(face, hr_size)
    return hr, resize_bicubic(hr, lr_size)


def lr_from_face(face: np.ndarray, lr_size: int = LR_SIZE) -> np.ndarray:
    """The SxS input a DIC member expects (S = 16, 32, 64; 96 or 128 for large faces) for a face crop of any size.

    Crops larger than S go through the training path (128 px, then S); smaller crops are resized to S directly,
    since an upscaled detour adds no information.

    Shape: (H, W, 3) uint8 -> (S, S, 3) uint8
    """
    if face.ndim != 3 or face.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB face, got shape {face.shape}")
    if min(face.shape[:2]) <= lr_size:
        return resize_bicubic(face, lr_size)
    return hr_and_lr(face, lr_size)[1]


# Face crop framing, measured with dlib's 68 landmarks on the 1,000 CelebA test faces (FSRNet's aligned 128-px set):
# the crop side is 1.55x the landmarks' larger extent and its centre sits 0.09 extents above theirs (forehead in).
# Faces that ship with scikit-image (the demo's examples, the int8 calibration): the astronaut's face in
# ``skimage.data.astronaut()`` (x1, y1, x2, y2) and the LFW subset's 25x25 grey faces (``lfw_faces``).
ASTRONAUT_FACE_BOX = (160, 55, 290, 185)


def lfw_faces(count: int) -> list[np.ndarray]:
    """The first ``count`` faces of scikit-image's LFW subset as (25, 25, 3) uint8 RGB (grey)."""
    from skimage import data

    lfw = (data.lfw_subset()[:count] * 255).round().astype(np.uint8)
    return [np.repeat(face[:, :, None], 3, axis=2) for face in lfw]


CROP_SCALE = 1.55
CROP_SHIFT_Y = -0.09


def square_box(
    landmarks: np.ndarray, scale: float = CROP_SCALE, shift_y: float = CROP_SHIFT_Y
) -> tuple[float, float, float, float]:
    """The square, axis-aligned face box around 68 landmarks (DIC's crop convention).

    Side = the landmarks' larger extent times ``scale``; centre = the landmark box's centre moved by ``shift_y``
    extents along y.

    Shape: landmarks (68, 2) xy -> (x1, y1, x2, y2)
    """
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    extent = float((hi - lo).max())
    cx, cy = (lo + hi) / 2.0
    cy = float(cy) + shift_y * extent
    half = extent * scale / 2.0
    return (float(cx) - half, cy - half, float(cx) + half, cy + half)


def crop_face(image: np.ndarray, box: Sequence[float], size: int = HR_SIZE) -> np.ndarray:
    """Resample the (sub-pixel) square ``box`` of ``image`` to ``size`` px with PIL bicubic; parts of the box
    outside the image are filled by repeating the edge pixels.

    Shape: (H, W, 3) uint8 -> (size, size, 3) uint8
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    outside = int(np.ceil(max(0.0, -x1, -y1, x2 - w, y2 - h)))
    pad = outside + 2 if outside else 0  # +2: room for the bicubic support
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return resize_bicubic(image, size, box=(x1 + pad, y1 + pad, x2 + pad, y2 + pad))


def to_crop_coords(points: np.ndarray, box: Sequence[float], size: int = HR_SIZE) -> np.ndarray:
    """Map image points into a ``crop_face`` output (pixel-centre convention on both sides).

    Shape: (..., 2) xy image pixels -> (..., 2) xy crop pixels
    """
    x1, y1, x2, _ = box
    scale = size / (x2 - x1)
    return ((np.asarray(points, np.float64) + 0.5 - (x1, y1)) * scale - 0.5).astype(np.float32)


def from_crop_coords(points: np.ndarray, box: Sequence[float], size: int = HR_SIZE) -> np.ndarray:
    """Inverse of ``to_crop_coords``. Shape: (..., 2) crop pixels -> (..., 2) image pixels."""
    x1, y1, x2, _ = box
    scale = (x2 - x1) / size
    return ((np.asarray(points, np.float64) + 0.5) * scale + (x1, y1) - 0.5).astype(np.float32)


def rescale_crop_points(points: np.ndarray, size: int, new_size: int) -> np.ndarray:
    """Points in a ``size``-px crop -> the same points in a ``new_size``-px crop of the same box (pixel centres).

    Shape: (..., 2) -> (..., 2) float32
    """
    if size == new_size:
        return np.asarray(points, np.float32)
    return ((np.asarray(points, np.float64) + 0.5) * (new_size / size) - 0.5).astype(np.float32)


def normalise(images: np.ndarray | Sequence[np.ndarray]) -> Tensor:
    """uint8 RGB images to the model's input space.

    Shape: (B, H, W, 3) or (H, W, 3) uint8 -> (B, 3, H, W) float32, [0, 1] minus the CelebA mean
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)
    return t - torch.tensor(CELEBA_MEAN).view(1, 3, 1, 1)


def still_frames(images: np.ndarray, frames: int) -> np.ndarray:
    """A multi-frame member's input for faces that do not move: every frame the same.

    Shape: (B, S, S, 3) -> (B, F, S, S, 3); unchanged for F = 1
    """
    return images if frames == 1 else np.repeat(images[:, None], frames, axis=1)


def normalise_frames(images: np.ndarray) -> Tensor:
    """Single- or multi-frame inputs to the model's input space, the frames stacked on the channels.

    Shape: (B, S, S, 3) -> (B, 3, S, S); (B, F, S, S, 3) uint8 -> (B, 3 * F, S, S) float32
    """
    if images.ndim == 4:
        return normalise(images)
    b, f = images.shape[:2]
    return normalise(images.reshape(b * f, *images.shape[2:])).reshape(b, f * 3, *images.shape[2:4])


def denormalise(images: Tensor) -> np.ndarray:
    """Model-space tensors back to uint8 RGB (add the mean, x255, clamp, round).

    Shape: (B, 3, H, W) float -> (B, H, W, 3) uint8
    """
    mean = torch.tensor(CELEBA_MEAN, device=images.device).view(1, 3, 1, 1)
    out = ((images.detach().float() + mean) * 255.0).clamp(0, 255).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()
