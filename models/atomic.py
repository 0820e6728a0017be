"""Atomic output files: written under a temporary name in the target folder, renamed only on success.

Temporary names are hidden and end in ``.part`` plus the target's suffix (``.out.k3j2.part.mp4``): tools that pick
a container by suffix still can, and dicface's folder jobs skip hidden files (``pipeline.job.find_videos``). An
operating-system error while creating, writing or renaming one (disk full, permission, read-only file system, name
too long) becomes an ``OutputError`` naming the target and the cause.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from models.errors import InputError, OutputError

TEMPORARY_MARK = ".part"  # in every temporary name, before the target's suffix
# Errors of writing, not of the data: reported as OutputError wherever they happen inside an atomic output.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                          errno.ENAMETOOLONG, errno.EIO})


def output_error(target: str | os.PathLike[str], exc: OSError) -> OutputError:
    """The one-line error for an OS error met while writing ``target``."""
    cause = exc.strerror or os.strerror(exc.errno) if exc.errno else str(exc)
    return OutputError(f"{target}: cannot write the output ({cause}); free some space or choose another -o")


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
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.target.stem}.",
                                       suffix=f"{TEMPORARY_MARK}{self.target.suffix}", dir=self.target.parent)
        except OSError as exc:
            raise output_error(self.target, exc) from exc
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> None:
        try:
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.target)
        except OSError as exc:
            raise output_error(self.target, exc) from exc

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds, else delete it."""
    file = AtomicFile(path)
    try:
        yield file.tmp
        file.commit()
    except OSError as exc:
        if not is_write_error(exc, file.tmp):
            raise
        raise output_error(path, exc) from exc
    finally:
        file.discard()


def is_write_error(exc: OSError, written: Path) -> bool:
    """An OS error of writing (``WRITE_ERRNOS``) that names no file, or names ``written``: not an input's."""
    named = exc.filename is None or Path(exc.filename) == written
    return not isinstance(exc, OutputError) and exc.errno in WRITE_ERRNOS and named


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
