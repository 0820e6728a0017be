from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dicface.configs.schema import RunConfig, load_config
from dicface.configs.video import AlignConfig
from dicface.models.errors import InputError
from dicface.pipeline.cli import main


def test_defaults_load() -> None:
    cfg = load_config()
    assert cfg.model.weights is None and cfg.inference.device == "auto" and cfg.inference.max_batch == 32


def test_the_default_file_lists_every_key_at_the_dataclasses_defaults() -> None:
    """configs/default.yaml documents the run configuration; the dataclasses are the only defaults."""
    from dicface.configs.schema import DEFAULT_CONFIG

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
    assert "enhance.seed: expected one of tracker, none, got 'sometimes'" in capsys.readouterr().err


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
    code = ("import sys; from dicface.configs.schema import load_config, load_train_config; load_config(); "
            "load_train_config('configs/train_x4.yaml'); "
            "print(sorted(m for m in ('torch', 'av', 'cv2', 'ray', 'scipy', 'dicface.models.train', "
            "'dicface.pipeline.source', 'dicface.pipeline.sink') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]"


def _leaf_fields(cls: type, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, annotation) of every value of a configuration dataclass, nested sections included."""
    import dataclasses
    from typing import get_type_hints

    leaves = []
    for name, hint in get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            leaves += _leaf_fields(hint, f"{prefix}{name}.")
        else:
            leaves.append((f"{prefix}{name}", hint))
    return leaves


def _wrong_values(hint: object) -> list[object]:
    """Values of the wrong type for ``hint`` as YAML gives them: a quoted "no" for a bool, a bool or a fraction for
    an int ... A kind of annotation missing here fails the test: add its wrong values (and its check)."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return [v for arm in arms for v in _wrong_values(arm) if not any(_fits(v, a) for a in arms)]
    table = {bool: ["no", 1], int: ["eight", 8.5, True], float: ["fast", True], str: [5, ["a"]]}
    if hint in table:
        return table[hint]
    if origin is typing.Literal:
        return ["bogus", True, [args[0]]]
    if origin is tuple:
        return ["one", [["x"]] * (len(args) if args[-1] is not Ellipsis else 1)]
    if origin is dict:
        return [["a", 1], {"a": "many"}]
    raise AssertionError(f"no wrong values for the annotation {hint!r}: add them here")


def _fits(value: object, hint: object) -> bool:
    from dicface.configs.check import FieldTypeError, check_value

    try:
        check_value(value, hint)
        return True
    except FieldTypeError:
        return False


def _nested(key: str, value: object) -> dict[str, object]:
    head, _, rest = key.partition(".")
    return {head: _nested(rest, value) if rest else value}


@pytest.mark.parametrize("key,hint", _leaf_fields(RunConfig), ids=[k for k, _ in _leaf_fields(RunConfig)])
def test_every_key_of_the_run_configuration_refuses_values_of_the_wrong_type(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, hint: object) -> None:
    """Each wrong value is refused by ``dicface config`` with exit code 2 and one line naming the file, the key and
    the value, before anything is run."""
    path = tmp_path / "c.yaml"
    for value in _wrong_values(hint):
        path.write_text(yaml.safe_dump(_nested(key, value)))
        assert main(["config", "--config", str(path)]) == 2, f"{key}: {value!r} accepted"
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and key in err and repr(value)[:8] in err, err


def test_every_key_of_a_training_configuration_refuses_values_of_the_wrong_type(tmp_path: Path) -> None:
    from dicface.configs.model import TrainConfig
    from dicface.configs.schema import load_train_config

    path = tmp_path / "t.yaml"
    required = {"train_images": "a", "train_landmarks": "b", "out_dir": "c"}
    for key, hint in _leaf_fields(TrainConfig):
        for value in _wrong_values(hint):
            path.write_text(yaml.safe_dump(required | _nested(key, value)))
            with pytest.raises(InputError, match=key.replace(".", r"\.")):
                load_train_config(path)


@pytest.mark.parametrize(
    "text,message",
    [
        ("encode: {crf: 99}\n", "crf must be 0 (lossless) to 51 for libx264, got 99"),
        ("encode: {crf: -5}\n", "crf must be 0 (lossless) to 51"),
        ("encode: {codec: libx265, preset: turbo}\n", "preset must be one of ultrafast"),
        ("encode: {codec: h265}\n", "'h265' is not a video encoder"),
        ("encode: {codec: aac}\n", "'aac' is not a video encoder"),
        ("encode: {pix_fmt: rgb999}\n", "libx264 cannot encode 'rgb999'"),
    ],
)
def test_encoder_options_are_checked_against_the_encoder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_flags_are_checked_as_the_file_is_and_named_as_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--crf", "99"]) == 2
    assert capsys.readouterr().err.strip() == ("dicface: error: flags: encode: crf must be 0 (lossless) to 51 for "
                                               "libx264, got 99")
    assert main(["config", "--crf", "-5"]) == 2


def test_a_section_that_is_not_a_mapping_is_refused_even_with_flags_for_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: [1, 2]\n")
    with pytest.raises(InputError, match="model: expected a mapping"):
        load_config(path, {"model": {"weights": "w.pt"}})
    path.write_text("model:\n")  # an empty section: the flags fill it
    assert load_config(path, {"model": {"weights": "w.pt"}}).model.weights == "w.pt"
