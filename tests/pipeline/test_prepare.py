from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dicface.models.imageio import write_png
from dicface.pipeline.cli import main


def test_prepare_data_writes_68_points_per_face_and_reports_misses(
    tmp_path: Path, real_faces: list[np.ndarray]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    write_png(np.pad(real_faces[0], ((40, 40), (40, 40), (0, 0)), mode="edge"), folder / "astronaut.png")
    write_png(np.full((120, 120, 3), 128, np.uint8), folder / "grey.png")
    out = tmp_path / "runs" / "landmarks.json"  # its folder is made
    assert main(["prepare-data", str(folder), "-o", str(out)]) == 0
    table = json.loads(out.read_text())
    assert list(table) == ["astronaut.png"]
    points = np.array(table["astronaut.png"])
    assert points.shape == (68, 2)
    assert points[:, 0].min() > 40 and points[:, 0].max() < 40 + 130  # on the face, in image pixels
