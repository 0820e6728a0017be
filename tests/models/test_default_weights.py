"""The shipped default family: every member intact, loadable, and better than bicubic on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.checkpoints import sha256_file
from models.evaluate import evaluate_faces
from models.faces import denormalise, normalise_frames, still_frames
from models.heatmaps import decode_landmarks
from models.imageio import list_images, read_rgb
from models.inference import FaceSuperResolver
from models.registry import default_weights, family, load_model

MEMBERS = {r.config.scale: r for r in family()}
# dB over bicubic on 40 CelebA test faces, well below each member's measured gain on 1,000 (see their cards)
MIN_GAIN_DB = {8: 1.0, 4: 1.0, 2: 0.2}


def test_default_card_is_complete_and_matches_its_file() -> None:
    record = default_weights()
    assert record.sha256 == sha256_file(record.file)
    assert "non-commercial" in record.licence and record.metrics["celeba_test_1000"]
    model, loaded = load_model()
    assert loaded.name == record.name and sum(p.numel() for p in model.parameters()) == 1_491_169


def test_the_family_has_members_for_every_input_size() -> None:
    assert sorted(MEMBERS) == [2, 4, 8]
    for record in MEMBERS.values():
        assert record.sha256 == sha256_file(record.file) and "non-commercial" in record.licence
        assert record.metrics["celeba_test_1000"]


@pytest.mark.parametrize("scale", sorted(MEMBERS))
def test_each_member_beats_bicubic_on_celeba_test_faces(celeba_test_dir: Path, scale: int) -> None:
    model, record = load_model(MEMBERS[scale])
    resolver = FaceSuperResolver(model)

    def run(lrs: list[np.ndarray], seeds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        out = resolver(normalise_frames(still_frames(np.stack(lrs), model.cfg.frames)))  # a still: every frame
        return denormalise(out.sr), decode_landmarks(out.heatmaps).numpy()

    faces = ((read_rgb(p), None) for p in list_images([celeba_test_dir])[:40])
    rows = {r["method"]: r for r in evaluate_faces(faces, run, lr_size=record.config.input_size).table()}
    assert rows["dic"]["psnr_y"] > rows["bicubic"]["psnr_y"] + MIN_GAIN_DB[scale]
    assert rows["dic"]["ssim_y"] > rows["bicubic"]["ssim_y"]
