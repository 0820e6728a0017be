"""Image files, with numpy and PIL only (no torch): the images of a folder, one RGB image, an atomic PNG. Both
``models/`` (evaluation, training data) and ``pipeline/`` (the CLI, ``--frames`` folders) read and write through it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dicface.models.atomic import atomic_output
from dicface.models.errors import InputError, InputNotFound

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


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically as PNG."""
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
