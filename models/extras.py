"""Optional dependencies: the features that need a pip extra import it here, so a missing one is one clear line.

Extras (``pyproject.toml``): ``ray`` (the Ray runtime, clusters, training on Ray), ``insightface`` (the SCRFD
detector), ``plot`` (``eval-video --plot``); ``all`` is every one of them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dicface.models.errors import MissingExtra


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise MissingExtra naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtra(f"{feature} needs {top}, which is not installed: pip install 'dicface[{extra}]'") from exc
