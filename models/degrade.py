"""How a training pair's LR input is made from its 128-px HR face.

``bicubic`` is DIC's protocol: PIL bicubic 128 -> input size, nothing else. ``video`` imitates faces cut out of
compressed footage: the sampling phase varies (the face lands anywhere on the pixel grid), the optics blur a
little, the sensor adds noise and the codec quantises blocks of a 4:2:0 image: JPEG (8x8 DCT, no deblocking) or a
real H.264 intra frame (libx264 through PyAV: 4x4/8x8 integer transforms, intra prediction and the in-loop
deblocking filter, with the face at a random offset to the 16-px macroblock grid, as a face cut out of a frame is;
~4 ms per sample). A share of the samples stays clean so the bicubic-protocol figures do not fall away.

A multi-frame member (``DICConfig.frames`` > 1) gets the same face seen again in earlier frames
(``degrade_frames``): each at its own sampling phase, through the same blur, noise level and codec (the frames
coded as one short H.264 clip, earliest first, so the later ones are predicted from the earlier), then carried
onto the current frame's grid by a bicubic shift with a small registration error, as the video path registers a
track's crops. Some earlier frames are also turned and scaled a little before they are sampled, which the shift
does not undo (a face that moved otherwise than the registration found), so the member learns to use an earlier
frame only where it agrees with the current one.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np

from dicface.configs.model import DegradationConfig
from dicface.models.faces import resize_bicubic


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


def h264_clip(images: list[np.ndarray], crf: int, offset: tuple[int, int] = (0, 0)) -> list[np.ndarray]:
    """H.264 round trip of frames coded as one clip (libx264 preset medium, 4:2:0; the first an I frame, the
    rest predicted), each placed ``offset`` = (dx, dy) pixels (0-15) into an edge-padded canvas.

    Shape: list of (S, S, 3) uint8 RGB -> same.
    """
    dx, dy = offset
    size = images[0].shape[0]
    side = -(-(size + 15) // 16) * 16
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width = encoder.height = side
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
    decoder = av.CodecContext.create("h264", "r")
    packets = []
    for pts, image in enumerate(images):
        canvas = np.pad(image, ((dy, side - size - dy), (dx, side - size - dx), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")
        frame.pts = pts
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    decoded = [f for packet in packets for f in decoder.decode(packet)] + list(decoder.decode(None))
    if len(decoded) != len(images):
        raise RuntimeError(f"libx264 round trip gave {len(decoded)} frames instead of {len(images)}")
    return [np.ascontiguousarray(f.to_ndarray(format="rgb24")[dy : dy + size, dx : dx + size]) for f in decoded]


def h264(image: np.ndarray, crf: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """H.264 intra-frame round trip of one image (``h264_clip`` of one frame). Shape: (S, S, 3) uint8 RGB -> same."""
    return h264_clip([image], crf, offset)[0]


def degrade(
    hr: np.ndarray, landmarks: np.ndarray, lr_size: int, cfg: DegradationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training triple from an HR face: (LR input, HR target, HR landmarks).

    Shape: hr (128, 128, 3) uint8 RGB, landmarks (68, 2) HR pixels -> ((S, S, 3) uint8, (128, 128, 3) uint8, (68, 2))
    """
    if cfg.mode == "bicubic" or rng.random() < cfg.clean_fraction:
        return resize_bicubic(hr, lr_size), hr, landmarks
    scale = hr.shape[0] // lr_size
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
    return _code([lr], cfg, rng)[0], hr, landmarks


def _code(images: list[np.ndarray], cfg: DegradationConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """At most one codec, drawn by its share: JPEG of each image at one quality, or one H.264 clip of them in list
    order (the first an I frame) at one crf and block-grid offset; else the images as they are."""
    codec = rng.random()
    if codec < cfg.jpeg_prob:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        return [jpeg(image, quality) for image in images]
    if codec < cfg.jpeg_prob + cfg.h264_prob:
        crf = int(rng.integers(cfg.h264_crf[0], cfg.h264_crf[1] + 1))
        return h264_clip(images, crf, (int(rng.integers(0, 16)), int(rng.integers(0, 16))))
    return images


def degrade_frames(
    hr: np.ndarray, landmarks: np.ndarray, lr_size: int, frames: int, cfg: DegradationConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A multi-frame training triple: the current LR frame and ``frames - 1`` earlier ones on its grid.

    Shape: hr (128, 128, 3) uint8 RGB, landmarks (68, 2) -> ((F, S, S, 3) uint8, current first; (128, 128, 3);
    (68, 2))
    """
    scale, side = hr.shape[0] // lr_size, hr.shape[0]
    clean = cfg.mode == "bicubic" or rng.random() < cfg.clean_fraction
    phases = rng.integers(-(scale // 2), scale // 2 + 1, (frames, 2))  # whole HR pixels: sub-pixel LR phases
    if clean or not cfg.shift:
        phases[0] = 0
    sigma = rng.uniform(*cfg.blur_sigma) * scale if not clean and rng.random() < cfg.blur_prob else 0.0
    noise = rng.uniform(*cfg.noise_sigma) if not clean and rng.random() < cfg.noise_prob else 0.0
    views = []
    for k, (dx, dy) in enumerate(phases):
        view, _ = shift_pair(hr, landmarks, int(dx), int(dy))
        if k and rng.random() < cfg.change_prob:  # the face turned or the registration missed: not carried back
            turn = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(-cfg.change_degrees,
                                           cfg.change_degrees), 1 + rng.uniform(-cfg.change_scale, cfg.change_scale))
            view = cv2.warpAffine(view, turn, (side, side), flags=cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REPLICATE)
        if sigma:
            view = cv2.GaussianBlur(view, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
        lr = resize_bicubic(view, lr_size)
        if noise:
            lr = np.clip(np.rint(lr.astype(np.float32) + rng.normal(0.0, noise, lr.shape)), 0, 255).astype(np.uint8)
        views.append(lr)
    if not clean:
        views = _code(views[::-1], cfg, rng)[::-1]  # coded earliest first; the current frame last
    target, points = shift_pair(hr, landmarks, int(phases[0][0]), int(phases[0][1]))
    present = frames - 1 - (int(rng.integers(1, frames)) if rng.random() < cfg.missing_prob else 0)
    stack = [views[0]]
    for k in range(1, frames):
        if k > present:
            stack.append(views[0])
            continue
        error = rng.normal(0.0, cfg.registration_sigma, 2)
        move = (phases[0] - phases[k]) / scale + error  # content of frame k onto frame 0's grid, LR pixels
        m = np.float32([[1, 0, move[0]], [0, 1, move[1]]])
        stack.append(cv2.warpAffine(views[k], m, (lr_size, lr_size), flags=cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REPLICATE))
    return np.stack(stack), target, points
