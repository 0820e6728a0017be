"""dicface: face super-resolution for video with DIC and tracked-landmark seeding.

The import package holds the project's three top-level folders: ``dicface.models`` (``models/``: the networks,
inference, training), ``dicface.pipeline`` (``pipeline/``: the video path, runtimes, the CLI) and
``dicface.configs`` (``configs/``: the run and training configurations).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dicface")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0+unknown"
