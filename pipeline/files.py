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


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on ``commit`` and disappears on ``discard``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.stem}.", suffix=f".part{self.target.suffix}",
                                   dir=self.target.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> None:
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds, else delete it."""
    file = AtomicFile(path)
    try:
        yield file.tmp
        file.commit()
    finally:
        file.discard()


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically as PNG."""
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
