"""Atomic outputs: a temporary file beside the target, renamed on success; without ``replace`` a file that appeared
at the target meanwhile is never replaced."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from dicface.models.atomic import AtomicFile, atomic_output
from dicface.models.errors import OutputExists


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("links", [True, False], ids=["hard links", "no hard links"])
def test_a_file_that_appears_during_the_write_is_kept_without_replace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool) -> None:
    if not links:  # a file system without hard links: the check-then-rename fallback
        def no_link(*_args: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    target = tmp_path / "out.mp4"
    file = AtomicFile(target, replace=False)
    file.tmp.write_bytes(b"ours")
    target.write_bytes(b"theirs")  # another run finished first
    with pytest.raises(OutputExists, match=f"{target} appeared while this run was writing it"):
        file.commit()
    file.discard()
    assert target.read_bytes() == b"theirs" and _hidden(tmp_path) == []
    with atomic_output(tmp_path / "new.mp4", replace=False) as tmp:
        tmp.write_bytes(b"new")
    assert (tmp_path / "new.mp4").read_bytes() == b"new" and _hidden(tmp_path) == []


def test_replace_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_output(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # untouched until the block succeeds
    assert target.read_text() == "new" and _hidden(tmp_path) == []
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
