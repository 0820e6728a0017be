"""Progress, drawn by the caller. Library functions with long loops take ``bars``, a factory of progress bars, and
report through it; the CLI passes ``tqdm`` (``pipeline.cli.common.terminal_bars``), anyone else gets ``no_bars``
(nothing drawn) by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Bar(Protocol):
    """The part of ``tqdm``'s interface the library uses: ``n`` (count so far), ``update``, ``set_postfix``."""

    n: float

    def update(self, n: float = 1) -> object: ...

    def set_postfix(self, ordered_dict: Mapping[str, object] | None = None, refresh: bool = True) -> None: ...

    def __enter__(self) -> Bar: ...

    def __exit__(self, *exc: object) -> object: ...


class BarFactory(Protocol):
    """Opens a bar; ``tqdm`` itself is one (``position``: the line of a bar among concurrent ones)."""

    def __call__(self, *, total: float | None, unit: str, desc: str, initial: float = 0,
                 position: int | None = None, leave: bool = True) -> Bar: ...


class NoBar:
    """A bar that draws nothing; it still counts, so a caller may read ``n``."""

    def __init__(self, *, total: float | None = None, initial: float = 0, **_: object) -> None:
        self.n = initial

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict: Mapping[str, object] | None = None, refresh: bool = True) -> None:
        pass

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


no_bars: BarFactory = NoBar
