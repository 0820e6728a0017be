"""dlib's model files: located by path in the ``face-recognition-models`` package (installed with dicface; its
``import`` is broken with new setuptools, so it is never imported) or Debian's ``libdlib-data``. The 68-point
predictor was trained on 300-W data and carries non-commercial terms, as the face-recognition network does."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from dicface.models.errors import InputNotFound


def find_dlib_file(name: str, env: str | None = None) -> Path:
    """``name`` from $``env`` (a path, when set), the face_recognition_models package or /usr/share/dlib."""
    candidates = [Path(os.environ[env])] if env and os.environ.get(env) else []
    spec = importlib.util.find_spec("face_recognition_models")  # locates without importing
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "models" / name)
    candidates.append(Path("/usr/share/dlib") / name)
    for path in candidates:
        if path.is_file():
            return path
    raise InputNotFound(f"dlib's {name} not found (looked in: {', '.join(map(str, candidates))}); pip install "
                        f"face-recognition-models" + (f", or set {env}" if env else ""))
