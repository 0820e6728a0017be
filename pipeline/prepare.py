"""``dicface prepare-data``: 68 landmarks for a folder of face photos, from our own detector backend."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dicface.models.atomic import atomic_output, prepare_output_dir
from dicface.models.imageio import list_images, read_rgb
from dicface.models.progress import BarFactory, no_bars
from dicface.pipeline.types import Detection


def prepare_landmarks(
    image_dir: str | os.PathLike[str], detector: Callable[[np.ndarray], list[Detection]], out_file: Path,
    bars: BarFactory = no_bars,
) -> tuple[int, list[str]]:
    """Write ``{"name": [[x, y] * 68]}`` for the largest face of each photo; returns (written, names without face).
    The output's folder is made (and checked writable) before the photos are read."""
    prepare_output_dir(Path(out_file).parent)
    table: dict[str, list[list[float]]] = {}
    missed: list[str] = []
    paths = list_images([image_dir])
    with bars(total=len(paths), desc="landmarks", unit="image") as bar:
        for path in paths:
            faces = [d for d in detector(read_rgb(path)) if d.landmarks is not None]
            bar.update(1)
            if not faces:
                missed.append(path.name)
                continue
            best = max(faces, key=lambda d: d.width)
            table[path.name] = np.round(best.landmarks, 2).tolist()
    with atomic_output(out_file) as tmp:
        tmp.write_text(json.dumps(table))
    return len(table), missed
