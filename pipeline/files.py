"""Atomic output files: written under a temporary name in the target folder, renamed only on success."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

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


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds, else delete it."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically as PNG."""
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
