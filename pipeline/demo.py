"""The bundled example: real face photos that ship with scikit-image, super-resolved with a comparison sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.faces import HR_SIZE, lr_from_face, resize_bicubic
from models.inference import FaceSuperResolver
from pipeline.files import write_png

ASTRONAUT_FACE_BOX = (160, 55, 290, 185)  # x1, y1, x2, y2 of the face in skimage.data.astronaut()
LFW_FACES = 6  # the first images of skimage.data.lfw_subset() are 25x25 grey faces


def example_faces() -> list[tuple[str, np.ndarray]]:
    """Named (H, W, 3) uint8 RGB face crops: the astronaut (130 px) and tiny 25-px LFW faces."""
    from skimage import data

    x1, y1, x2, y2 = ASTRONAUT_FACE_BOX
    faces = [("astronaut", np.ascontiguousarray(data.astronaut()[y1:y2, x1:x2]))]
    lfw = (data.lfw_subset()[:LFW_FACES] * 255).round().astype(np.uint8)
    faces += [(f"lfw_{i:02d}", np.repeat(face[:, :, None], 3, axis=2)) for i, face in enumerate(lfw)]
    return faces


def comparison_sheet(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """One row per face: 16-px input (nearest, enlarged) | bicubic | DIC, each 128 px.

    Shape: list of ((16, 16, 3), (128, 128, 3), (128, 128, 3)) uint8 -> (128 * rows, 3 * 128 + 8, 3) uint8
    """
    gap = np.full((HR_SIZE, 4, 3), 255, np.uint8)
    lines = []
    for lr, bicubic, sr in rows:
        nearest = np.repeat(np.repeat(lr, HR_SIZE // lr.shape[0], axis=0), HR_SIZE // lr.shape[1], axis=1)
        lines.append(np.concatenate([nearest, gap, bicubic, gap, sr], axis=1))
    return np.concatenate(lines, axis=0)


def run_demo(out_dir: Path, resolver: FaceSuperResolver) -> list[Path]:
    """Write the example inputs, their DIC outputs and ``comparison.png``; returns the written paths."""
    faces = example_faces()
    sr, _ = resolver.faces([face for _, face in faces])
    written, rows = [], []
    for (name, face), out in zip(faces, sr, strict=True):
        lr = lr_from_face(face)
        rows.append((lr, resize_bicubic(lr, HR_SIZE), out))
        for suffix, image in (("input", face), ("dic", out)):
            path = out_dir / f"{name}_{suffix}.png"
            write_png(image, path)
            written.append(path)
    sheet = out_dir / "comparison.png"
    write_png(comparison_sheet(rows), sheet)
    return [*written, sheet]
