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

from dicface.models.errors import InputError, OutputError, OutputExists

TEMPORARY_MARK = ".part"  # in every temporary name, before the target's suffix
# Errors of writing, not of the data: reported as OutputError wherever they happen inside an atomic output.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                          errno.ENAMETOOLONG, errno.EIO})


SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def output_error(target: str | os.PathLike[str], exc: OSError) -> OutputError:
    """The one-line error for an OS error met while writing ``target``."""
    cause = exc.strerror or os.strerror(exc.errno) if exc.errno else str(exc)
    advice = "free some space or choose another -o" if exc.errno in SPACE_ERRNOS else "choose another -o"
    return OutputError(f"{target}: cannot write the output ({cause}); {advice}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on ``commit`` and disappears on ``discard``.

    ``replace=False``: ``commit`` never replaces a file that appeared at ``path`` meanwhile (another run writing the
    same output): it links the temporary file to the name, which fails if the name exists, and raises an
    ``OutputExists`` naming the path, the other file left intact. The committed file gets the usual permissions
    (0666 minus the umask), not the temporary file's 0600.
    """

    def __init__(self, path: str | os.PathLike[str], replace: bool = True) -> None:
        self.target = Path(path)
        self.replace = replace
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
            if self.replace:
                os.replace(self.tmp, self.target)
            else:
                _move_no_replace(self.tmp, self.target)
        except FileExistsError as exc:
            raise OutputExists(f"{self.target} appeared while this run was writing it (another run?): it is kept "
                               f"and this run's output dropped; pass --overwrite to replace it") from exc
        except OSError as exc:
            raise output_error(self.target, exc) from exc

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def _move_no_replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` unless ``target`` exists (``FileExistsError``), atomically: a hard link fails
    on an existing name. On a file system without hard links, a check then a rename (a short window remains)."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from exc
        os.rename(source, target)
        return
    source.unlink()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds, else delete it
    (``replace=False``: an ``OutputExists`` instead of replacing a file that appeared meanwhile)."""
    file = AtomicFile(path, replace)
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


def check_writable(folder: str | os.PathLike[str]) -> None:
    """An ``OutputError`` (exit code 5) naming ``folder`` and the cause (read-only file system, permission ...)
    unless a file can be created in it; an ``InputError`` if it is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: output folder does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise output_error(folder, exc) from exc


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output folder if needed; an ``OutputError`` if it cannot be created or written."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise output_error(folder, exc) from exc
        raise InputError(f"{folder}: cannot create the output folder ({exc.strerror})") from exc
    check_writable(folder)
    return folder
