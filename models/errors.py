"""One error hierarchy for the whole project: each error is something the user can fix.

``str(err)`` is the one line the CLI prints; ``exit_code`` is the documented process exit status.
Each class also inherits the matching built-in so callers can catch either.
"""


class DicfaceError(Exception):
    """Root of every user-facing error."""

    exit_code = 1


class InputError(DicfaceError, ValueError):
    """An input file, folder or value cannot be used as given."""

    exit_code = 2


class InputNotFound(InputError, FileNotFoundError):
    """An input path does not exist."""


class OutputExists(InputError):
    """The output path exists (or appeared while the run wrote it) and replacing it was not asked for."""


class CheckpointError(DicfaceError, ValueError):
    """A weights file is missing, unreadable, unsafe or does not fit the network."""

    exit_code = 3


class NoWeightsError(CheckpointError):
    """No weights were given and no default weights are installed."""


class OutputError(DicfaceError, OSError):
    """An output cannot be written: disk full, no permission, read-only file system, name too long ..."""

    exit_code = 5


class MissingExtra(InputError):
    """A feature needs a package of an optional extra that is not installed (``pip install 'dicface[EXTRA]'``)."""
