"""YAML configuration -> frozen dataclasses. CLI flags that were set override the file; unknown keys are errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.errors import InputError
from models.inference import InferenceOptions
from models.train import TrainConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent / "default.yaml"


@dataclass(frozen=True)
class ModelConfig:
    """Which weights to use. ``weights``: a file, or null for the package's default family (one member per input
    size). ``scale``: null (auto) routes each face to the member that fits it; 8, 4 or 2 uses that member alone."""

    weights: str | None = None
    num_steps: int | None = None
    scale: int | None = None

    def __post_init__(self) -> None:
        if self.scale is not None and self.scale not in (2, 4, 8):
            raise ValueError(f"scale must be auto (null), 2, 4 or 8, got {self.scale!r}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceOptions = field(default_factory=InferenceOptions)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    if not isinstance(values, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    kwargs = {}
    for name, value in values.items():
        nested = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        if nested is not None and dataclasses.is_dataclass(nested):
            kwargs[name] = _build(nested, value or {}, f"{where}.{name}")
        else:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from exc


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def _read_yaml(source: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except FileNotFoundError as exc:
        raise InputError(f"{source}: config file not found") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{source}: cannot read YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping at the top level")
    return data


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Read ``default.yaml`` (or ``path``) and apply ``overrides`` ({section: {key: value}}; None values skipped)."""
    source = Path(path) if path is not None else DEFAULT_CONFIG
    return _build(RunConfig, _merge(_read_yaml(source), overrides or {}), str(source))


def load_train_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a training YAML (see ``configs/train_default.yaml``) into a TrainConfig; None overrides are skipped."""
    source = Path(path)
    return _build(TrainConfig, _merge(_read_yaml(source), overrides or {}), str(source))
