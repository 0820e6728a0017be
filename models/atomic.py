"""Atomic output files: written under a temporary name in the target folder, renamed only on success."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on ``commit`` and disappears on ``discard``.

    The committed file gets the usual permissions (0666 minus the umask), not the temporary file's 0600.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.stem}.", suffix=f".part{self.target.suffix}",
                                   dir=self.target.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> None:
        os.chmod(self.tmp, 0o666 & ~_umask())
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
