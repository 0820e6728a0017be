"""How a training pair's LR input is made from its 128-px HR face.

``bicubic`` is DIC's protocol: PIL bicubic 128 -> input size, nothing else. ``video`` imitates faces cut out of
compressed footage: the sampling phase varies (the face lands anywhere on the pixel grid), the optics blur a
little, the sensor adds noise and the codec quantises blocks of a 4:2:0 image: JPEG (8x8 DCT, no deblocking) or a
real H.264 intra frame (libx264 through PyAV: 4x4/8x8 integer transforms, intra prediction and the in-loop
deblocking filter, with the face at a random offset to the 16-px macroblock grid, as a face cut out of a frame is;
~4 ms per sample). A share of the samples stays clean so the bicubic-protocol figures do not fall away.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np

from configs.model import DegradationConfig
from models.faces import HR_SIZE, resize_bicubic


def shift_pair(hr: np.ndarray, landmarks: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Move the face by whole HR pixels (edges repeated). Shape: (128, 128, 3) uint8, (68, 2) -> same."""
    pad = max(abs(dx), abs(dy))
    if pad == 0:
        return hr, landmarks
    padded = np.pad(hr, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    moved = padded[pad - dy : pad - dy + hr.shape[0], pad - dx : pad - dx + hr.shape[1]]
    return np.ascontiguousarray(moved), landmarks + np.array([dx, dy], np.float32)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip (4:2:0). Shape: (H, W, 3) uint8 RGB -> same."""
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


def h264(image: np.ndarray, crf: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """H.264 intra-frame round trip (libx264 preset medium, 4:2:0) of ``image`` placed ``offset`` = (dx, dy)
    pixels (0-15) into an edge-padded canvas, so its blocks fall where they would in a frame.

    Shape: (S, S, 3) uint8 RGB -> same.
    """
    dx, dy = offset
    size = image.shape[0]
    side = -(-(size + 15) // 16) * 16
    canvas = np.pad(image, ((dy, side - size - dy), (dx, side - size - dx), (0, 0)), mode="edge")
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width = encoder.height = side
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
    frame = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for packet in [*encoder.encode(frame), *encoder.encode(None)] for f in decoder.decode(packet)]
    decoded += decoder.decode(None)
    if len(decoded) != 1:
        raise RuntimeError(f"libx264 round trip gave {len(decoded)} frames instead of 1")
    return np.ascontiguousarray(decoded[0].to_ndarray(format="rgb24")[dy : dy + size, dx : dx + size])


def degrade(
    hr: np.ndarray, landmarks: np.ndarray, lr_size: int, cfg: DegradationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training triple from an HR face: (LR input, HR target, HR landmarks).

    Shape: hr (128, 128, 3) uint8 RGB, landmarks (68, 2) HR pixels -> ((S, S, 3) uint8, (128, 128, 3) uint8, (68, 2))
    """
    if cfg.mode == "bicubic" or rng.random() < cfg.clean_fraction:
        return resize_bicubic(hr, lr_size), hr, landmarks
    scale = HR_SIZE // lr_size
    if cfg.shift:
        dx, dy = (int(v) for v in rng.integers(-(scale // 2), scale // 2 + 1, 2))
        hr, landmarks = shift_pair(hr, landmarks, dx, dy)
    source = hr
    if rng.random() < cfg.blur_prob:
        sigma = rng.uniform(*cfg.blur_sigma) * scale
        source = cv2.GaussianBlur(hr, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
    lr = resize_bicubic(source, lr_size)
    if rng.random() < cfg.noise_prob:
        noisy = lr.astype(np.float32) + rng.normal(0.0, rng.uniform(*cfg.noise_sigma), lr.shape)
        lr = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    codec = rng.random()
    if codec < cfg.jpeg_prob:
        lr = jpeg(lr, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    elif codec < cfg.jpeg_prob + cfg.h264_prob:
        crf = int(rng.integers(cfg.h264_crf[0], cfg.h264_crf[1] + 1))
        lr = h264(lr, crf, (int(rng.integers(0, 16)), int(rng.integers(0, 16))))
    return lr, hr, landmarks
