"""The shipped default weights: intact, loadable, and better than bicubic on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.checkpoints import sha256_file
from models.evaluate import evaluate_faces, list_images, read_rgb
from models.faces import denormalise, normalise
from models.heatmaps import decode_landmarks
from models.inference import FaceSuperResolver
from models.registry import default_weights, load_model


def test_default_card_is_complete_and_matches_its_file() -> None:
    record = default_weights()
    assert record.sha256 == sha256_file(record.file)
    assert "non-commercial" in record.licence and record.metrics["celeba_test_1000"]
    model, loaded = load_model()
    assert loaded.name == record.name and sum(p.numel() for p in model.parameters()) == 1_491_169


def test_default_beats_bicubic_on_celeba_test_faces(celeba_test_dir: Path) -> None:
    resolver = FaceSuperResolver(load_model()[0])

    def run(lrs: list[np.ndarray], seeds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        out = resolver(normalise(np.stack(lrs)))
        return denormalise(out.sr), decode_landmarks(out.heatmaps).numpy()

    faces = ((read_rgb(p), None) for p in list_images([celeba_test_dir])[:40])
    rows = {r["method"]: r for r in evaluate_faces(faces, run).table()}
    assert rows["dic"]["psnr_y"] > rows["bicubic"]["psnr_y"] + 1.0
    assert rows["dic"]["ssim_y"] > rows["bicubic"]["ssim_y"]
