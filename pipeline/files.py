"""Output folders and atomic image files (``models.atomic`` holds the temporary-file-then-rename logic)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from models.atomic import atomic_output
from models.errors import InputError


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output folder if needed; a clear error if it cannot be written."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the output folder ({exc.strerror})") from exc
    if not os.access(folder, os.W_OK):
        raise InputError(f"{folder}: output folder is not writable")
    return folder


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically as PNG."""
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
