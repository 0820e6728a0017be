from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from configs.schema import RunConfig, load_config
from configs.video import AlignConfig
from models.errors import InputError
from pipeline.cli import main


def test_defaults_load() -> None:
    cfg = load_config()
    assert cfg.model.weights is None and cfg.inference.device == "auto" and cfg.inference.max_batch == 32


def test_the_default_file_lists_every_key_at_the_dataclasses_defaults() -> None:
    """configs/default.yaml documents the run configuration; the dataclasses are the only defaults."""
    from configs.schema import DEFAULT_CONFIG

    assert load_config() == RunConfig()
    assert yaml.safe_load(DEFAULT_CONFIG.read_text()) == yaml.safe_load(yaml.safe_dump(RunConfig().to_dict()))


def test_a_file_and_flags_make_one_run_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("enhance:\n  window: 4\n  fusion:\n    frames: 4\ntrack:\n  max_age: 3\nencode:\n  crf: 30\n")
    assert main(["config", "--config", str(path), "--window", "6", "--fusion", "0", "--feedback", "on",
                 "--detect-resources", '{"cam": 1}', "--split", "3"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["enhance"]["window"] == 6 and cfg["enhance"]["fusion"] == {**cfg["enhance"]["fusion"], "weight": 0,
                                                                           "frames": 4}
    assert cfg["enhance"]["feedback"] is True and cfg["track"]["max_age"] == 3 and cfg["encode"]["crf"] == 30
    assert cfg["runtime"]["detect_resources"] == {"cam": 1.0} and cfg["runtime"]["split"] == 3
    # defaults, not given:
    assert cfg["encode"]["preset"] == "medium" and cfg["align"]["max_face_px"] == AlignConfig.max_face_px
    path.write_text("enhance:\n  seed: sometimes\n")
    assert main(["config", "--config", str(path)]) == 2
    assert "enhance: seed must be one of" in capsys.readouterr().err


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


def test_a_config_loads_without_the_heavy_libraries() -> None:
    """Reading and checking a YAML run or training configuration imports neither torch nor the trainer, video or
    Ray code (the sections live in ``configs/``; the stages import them from there)."""
    code = ("import sys; from configs.schema import load_config, load_train_config; load_config(); "
            "load_train_config('configs/train_x4.yaml'); "
            "print(sorted(m for m in ('torch', 'av', 'cv2', 'ray', 'scipy', 'models.train', 'pipeline.io') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]"
