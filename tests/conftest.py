"""Shared fixtures: a tiny DIC configuration, weights files in every container layout, real face photos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from dicface.configs.model import DICConfig
from dicface.models.dic import DIC

SHARED = Path(__file__).resolve().parents[2] / "shared"
TINY = DICConfig(num_features=8, num_groups=2, num_steps=3, hg_num_features=16, num_fusion_blocks=1, bp_scale=2)


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(autouse=True, scope="session")
def _user_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user's folders are the session's own (the CLI tests' processes inherit them): networks converted for
    OpenVINO are cached there, not in the user's cache, and a user's own weights do not change what tests load."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DICFACE_CACHE_DIR", str(tmp_path_factory.mktemp("dicface-cache")))
        patch.setenv("DICFACE_WEIGHTS_DIR", str(tmp_path_factory.mktemp("dicface-weights")))
        yield


@pytest.fixture
def tiny_model() -> DIC:
    torch.manual_seed(0)
    return DIC(TINY).eval()


@pytest.fixture
def tiny_weights(tmp_path: Path, tiny_model: DIC) -> Path:
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": tiny_model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def real_faces() -> list[np.ndarray]:
    """Real face photos shipped with scikit-image: the astronaut's face (130 px) and three 25-px LFW faces."""
    from dicface.pipeline.demo import example_faces

    return [face for _, face in example_faces()[:4]]


@pytest.fixture(scope="session")
def celeba_test_dir() -> Path:
    folder = SHARED / "data" / "celeba_test_1000_hr"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (shared evaluation data)")
    return folder
