from __future__ import annotations

from pathlib import Path

import pytest

from configs.schema import load_config
from models.errors import InputError


def test_defaults_load() -> None:
    cfg = load_config()
    assert cfg.model.weights is None and cfg.inference.device == "auto" and cfg.inference.max_batch == 32


def test_overrides_apply_only_when_set(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inference:\n  max_batch: 8\n  device: cpu\n")
    cfg = load_config(path, {"inference": {"max_batch": None, "precision": "fp32"}})
    assert (cfg.inference.max_batch, cfg.inference.device, cfg.inference.precision) == (8, "cpu", "fp32")


@pytest.mark.parametrize(
    "text,message",
    [
        ("bogus: 1\n", "unknown key 'bogus'"),
        ("inference:\n  max_batch: 0\n", "max_batch must be at least 1"),
        ("inference: [1, 2]\n", "expected a mapping"),
        ("model: {weights: [unclosed\n", "cannot read YAML"),
    ],
)
def test_invalid_configs_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)
