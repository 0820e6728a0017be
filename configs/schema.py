"""YAML configuration -> frozen dataclasses: one ``RunConfig`` describes a whole run (model, inference, detection,
tracking, size policy, enhancement, blending, encoding, runtime). The dataclasses' defaults are the only defaults;
``configs/default.yaml`` lists them, a user's file overrides them and CLI flags that were given override the file.
Unknown keys are errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import yaml

from dicface.configs.check import FieldTypeError, check_value
from dicface.configs.flags import flag, member_scale, positive_int, resources, split_parts
from dicface.configs.model import InferenceOptions, TrainConfig
from dicface.configs.video import (
    AlignConfig,
    BlendConfig,
    DetectConfig,
    EncodeOptions,
    FusionConfig,
    TrackConfig,
)
from dicface.models.errors import InputError

SeedMode = Literal["tracker", "none"]
Runtime = Literal["local", "ray"]
SEED_MODES: tuple[str, ...] = get_args(SeedMode)
RUNTIMES: tuple[str, ...] = get_args(Runtime)

DEFAULT_CONFIG = Path(__file__).resolve().parent / "default.yaml"
# ``split: auto`` cuts files at least this long, into one part per two DIC actors: one stream keeps at most two DIC
# windows in flight, so it already keeps two actors busy (measured on 2 cores: a video split in 2 parts ran at 0.93x
# the whole video with 2 workers per pool).
SPLIT_AUTO_SECONDS = 60.0


@dataclass(frozen=True)
class ModelConfig:
    """Which weights to use. ``weights``: a file, or null for the package's default family (one member per input
    size). ``scale``: null (auto) routes each face to the member that fits it; 8, 4 or 2 uses that member alone.
    ``fidelity``: 1 = the faithful members; below 1 each member's weights are blended with those of its
    natural-detail twin, where the package has one (0: the natural member alone; ``models.registry.load_model``)."""

    weights: str | None = field(default=None, metadata=flag(
        "--weights", "DIC weights file (default: the package's default family)"))
    num_steps: int | None = field(default=None, metadata=flag(
        "--steps", "recurrent steps (default: as trained; one fewer where DIC runs in int8)", type=positive_int))
    scale: Literal[8, 4, 2] | None = field(default=None, metadata=flag(
        "--scale", "auto (default): each face goes to the DIC member whose input fits it (16/32/64 px); 8, 4 or 2: "
        "that member alone", type=member_scale))
    fidelity: float = field(default=1.0, metadata=flag(
        "--fidelity", "1: faithful members (highest PSNR, smooth); 0: the natural-detail members where the package "
        "has them (sharper, invented detail); between: blended"))

    def __post_init__(self) -> None:
        if self.scale is not None and self.scale not in (2, 4, 8):
            raise ValueError(f"scale must be auto (null), 2, 4 or 8, got {self.scale!r}")
        if not 0 <= self.fidelity <= 1:
            raise ValueError(f"fidelity must be between 0 (natural detail) and 1 (faithful), got {self.fidelity}")
        if self.fidelity < 1 and self.weights is not None:
            raise ValueError("fidelity below 1 blends the package's members with their natural-detail twins; "
                             "it does not apply to a weights file")


@dataclass(frozen=True)
class EnhanceConfig:
    """How faces are enhanced over time: DIC batches of ``window`` frames, seeded by the tracker (or not), DIC's
    landmarks fed back to it (off: measured, it did not help), temporal fusion, scene cuts; the output's scale."""

    window: int = field(default=8, metadata=flag("--window", "frames per DIC batch", type=positive_int))
    seed: SeedMode = field(default="tracker", metadata=flag(
        "--seed", "seed DIC's landmark branch with the tracked landmarks or not"))
    feedback: bool = field(default=False, metadata=flag(
        "--feedback", "DIC's landmarks update the tracker (measured: it raised the tracks' jitter against known "
        "motion by 20 %%)"))
    fusion: FusionConfig = field(default_factory=FusionConfig)
    scene_cuts: bool = field(default=True, metadata=flag(
        "--scene-cuts", "detect scene cuts and restart tracks and fusion there"))
    upscale: float = field(default=1.0, metadata=flag("--upscale", "scale the whole frame by K (faces from DIC)"))

    def __post_init__(self) -> None:
        if self.seed not in SEED_MODES:
            raise ValueError(f"seed must be one of {SEED_MODES}, got {self.seed!r}")
        if self.window < 1 or not 1.0 <= self.upscale <= 8.0:
            raise ValueError(f"need window >= 1 and upscale between 1 and 8, got {self.window}, {self.upscale}")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where the stages run (``runtime`` null: Ray for a job of many videos or with an address, else local) and
    the Ray pools (``workers`` null: one per two cores; resources as {"name": amount}); ``split``: auto or parts."""

    runtime: Runtime | None = field(default=None, metadata=flag(
        "--runtime", "local: everything in this process; ray: detection and DIC on Ray actor pools (default: ray for "
        "a job of many videos or with --address / RAY_ADDRESS, else local)"))
    address: str | None = field(default=None, metadata=flag(
        "--address", "Ray cluster to join (auto or HOST:PORT; default RAY_ADDRESS, else an embedded local Ray)"))
    workers: int | None = field(default=None, metadata=flag(
        "--workers", "actors in each pool (detection, DIC); default: one per two cores", type=positive_int))
    streams: int = field(default=2, metadata=flag(
        "--streams", "videos of a job processed at once, sharing the pools", type=positive_int))
    max_wait_ms: float = field(default=10.0, metadata=flag(
        "--max-wait-ms", "a DIC actor waits this long for faces of other frames and streams to fill a batch"))
    cpus_per_actor: float = field(default=1.0, metadata=flag("--cpus-per-actor", "CPUs (and threads) per actor"))
    gpus_per_actor: float = field(default=0.0, metadata=flag(
        "--gpus-per-actor", "GPUs per DIC actor, fractions share one"))
    detect_resources: dict[str, float] | None = field(default=None, metadata=flag(
        "--detect-resources", "custom Ray resources of detection actors, JSON ('{\"cam\": 1}')", type=resources))
    dic_resources: dict[str, float] | None = field(default=None, metadata=flag(
        "--dic-resources", "custom Ray resources of DIC actors, JSON ('{\"gpu_node\": 1}')", type=resources))
    split: Literal["auto"] | int = field(default="auto", metadata=flag(
        "--split", "cut one long file at keyframes into N parts enhanced at once and joined without re-encoding "
        f"(Ray runtime; auto: a part per two --workers, for a file of {SPLIT_AUTO_SECONDS:.0f} s or more; 1: never)",
        type=split_parts))

    def __post_init__(self) -> None:
        if self.runtime is not None and self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES} or null, got {self.runtime!r}")
        if (self.workers is not None and self.workers < 1) or self.streams < 1 or self.cpus_per_actor <= 0 \
                or self.gpus_per_actor < 0 or self.max_wait_ms < 0:
            raise ValueError(f"need workers and streams >= 1, cpus_per_actor > 0, gpus_per_actor and max_wait_ms "
                             f">= 0; got {self.workers}, {self.streams}, {self.cpus_per_actor}, {self.gpus_per_actor}, "
                             f"{self.max_wait_ms}")
        if self.split != "auto" and not (isinstance(self.split, int) and self.split >= 1):
            raise ValueError(f"split must be auto or a number of parts, got {self.split!r}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    enhance: EnhanceConfig = field(default_factory=EnhanceConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, values: Any, source: str, section: str = "") -> Any:
    """``cls`` from a mapping of its fields read from ``source``; each value checked against its annotation
    (``configs.check``), nested sections built likewise. Errors name the file and the key: ``run.yaml:
    enhance.window: expected an integer, got 'eight' (str)``."""
    where = f"{source}: {section}" if section else source
    if not isinstance(values, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    hints = get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        key = f"{section}.{name}" if section else name
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = _build(hints[name], {} if value is None else value, source, key)
            continue
        try:
            kwargs[name] = check_value(value, hints[name])
        except FieldTypeError as exc:
            raise InputError(f"{source}: {key}: {exc}") from exc
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from exc


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top, section by section; None in ``overrides`` means "not given". A section of
    ``base`` that is not a mapping stays as it is, to be reported by ``_build``."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            if merged.get(key) is None or isinstance(merged[key], Mapping):
                merged[key] = _merge(merged.get(key) or {}, value)
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
    """Read ``default.yaml`` (or ``path``) and apply ``overrides`` ({section: {key: value}}; None values skipped).
    An error names the file, or "flags" where the file alone is valid and the overrides are not."""
    source = Path(path) if path is not None else DEFAULT_CONFIG
    values = _read_yaml(source)
    config = _build(RunConfig, values, str(source))
    return _build(RunConfig, _merge(values, overrides), "flags") if overrides else config


def load_train_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a training YAML (see ``configs/train_default.yaml``) into a TrainConfig; None overrides are skipped."""
    source = Path(path)
    return _build(TrainConfig, _merge(_read_yaml(source), overrides or {}), str(source))
