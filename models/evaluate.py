"""DIC's evaluation protocol on a folder of HR faces: degrade as in training, super-resolve, score on Y."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from models.errors import InputError, InputNotFound
from models.faces import HR_SIZE, hr_and_lr, resize_bicubic
from models.metrics import DEFAULT_CROP, psnr_y, ssim_y

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def list_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found (non-recursively, sorted) in the given folders."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif item.is_file():
            found.append(item)
        else:
            raise InputNotFound(f"{item}: no such file or folder")
    if not found:
        raise InputError(f"no images found in {', '.join(map(str, inputs))} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return found


def read_rgb(path: Path) -> np.ndarray:
    """Shape: file -> (H, W, 3) uint8 RGB."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from exc


@dataclass
class MethodScores:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)

    def add(self, hr: np.ndarray, out: np.ndarray, crop: int) -> None:
        self.psnr.append(psnr_y(out, hr, crop))
        self.ssim.append(ssim_y(out, hr, crop))

    def mean(self) -> tuple[float, float]:
        finite = [p for p in self.psnr if math.isfinite(p)]
        return float(np.mean(finite)) if finite else math.inf, float(np.mean(self.ssim))


@dataclass
class EvalResult:
    count: int
    crop: int
    scores: dict[str, MethodScores]

    def table(self) -> list[dict[str, float | str]]:
        rows = []
        for name, s in self.scores.items():
            psnr, ssim = s.mean()
            rows.append({"method": name, "psnr_y": round(psnr, 4), "ssim_y": round(ssim, 4), "faces": self.count})
        return rows


def evaluate_faces(
    hr_images: Iterable[np.ndarray],
    super_resolve: Callable[[list[np.ndarray]], np.ndarray],
    batch: int = 16,
    crop: int = DEFAULT_CROP,
) -> EvalResult:
    """Score ``super_resolve`` (16x16 uint8 faces -> (B, 128, 128, 3) uint8) against bicubic on HR faces.

    Each HR face is resized to 128 (PIL bicubic) if needed, its LR input made by PIL bicubic 128 -> 16, and the
    bicubic baseline by PIL bicubic 16 -> 128.
    """
    scores = {"bicubic": MethodScores(), "dic": MethodScores()}
    count = 0
    pending: list[tuple[np.ndarray, np.ndarray]] = []

    def flush() -> None:
        outs = super_resolve([lr for _, lr in pending])
        for (hr, lr), out in zip(pending, outs, strict=True):
            scores["bicubic"].add(hr, resize_bicubic(lr, HR_SIZE), crop)
            scores["dic"].add(hr, out, crop)
        pending.clear()

    for image in hr_images:
        pending.append(hr_and_lr(image))
        count += 1
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    if count == 0:
        raise InputError("no faces to evaluate")
    return EvalResult(count=count, crop=crop, scores=scores)
