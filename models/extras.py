"""Optional dependencies: the features that need a pip extra import it here, so a missing one is one clear line.

Extras (``pyproject.toml``): ``ray`` (the Ray runtime, clusters, training on Ray), ``insightface`` (the SCRFD
detector), ``plot`` (``eval-video --plot``); ``all`` is every one of them.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from dicface.models.errors import MissingExtra


def installed(module: str) -> bool:
    """``module`` is installed: a real module or package, not a folder of that name that Python would import as a
    namespace package (Ray leaves ``/tmp/ray``, so ``ray`` "imports" from ``/tmp`` where Ray is not installed)."""
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin not in (None, "namespace")


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise MissingExtra naming the extra that installs it."""
    top = module.split(".")[0]
    missing = MissingExtra(f"{feature} needs {top}, which is not installed: pip install 'dicface[{extra}]'")
    try:
        if not installed(top):
            raise missing
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing from exc
