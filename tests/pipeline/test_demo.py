"""The demo's natural-detail comparison: bicubic | faithful | natural | truth from an H.264-coded LR face."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from dicface.configs.model import InferenceOptions
from dicface.models.dic import DIC
from dicface.models.inference import FaceSuperResolver
from dicface.pipeline.demo import fidelity_sheet
from tests.conftest import TINY


def test_the_fidelity_sheet_shows_four_columns_per_face_and_member(real_faces: list[np.ndarray]) -> None:
    options = InferenceOptions(precision="fp32")
    pairs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        pairs.append(tuple(FaceSuperResolver(DIC(replace(TINY, scale=4)).eval(), options) for _ in range(2)))
    sheet = fidelity_sheet(real_faces[:2], pairs)
    assert sheet.shape == (4 * 128, 4 * 128 + 12, 3) and sheet.dtype == np.uint8
    truth = sheet[:128, 3 * 132 :]
    assert np.abs(truth.astype(int) - sheet[:128, :128].astype(int)).mean() > 1  # the truth is not the bicubic

