"""Which weights exist and how to build a network for them.

Weights shipped with the package live in ``models/weights/`` as a weights file plus a JSON card (``*.json``) that
records the configuration, training data, metrics, licence and sha256. ``dicface export-weights`` writes a user's
own members the same way into the user's weights folder (``$DICFACE_WEIGHTS_DIR``, else
``$XDG_DATA_HOME/dicface/weights`` or ``~/.local/share/dicface/weights``), never into the installed package; that
folder is searched first, so a user's member of a name or a user's default for a scale wins over the package's.
The package ships a family of members (16, 32, 64 px inputs: scales 8, 4, 2, each with a 128-px output; and members
for large faces with larger outputs); the card marked ``"default": true`` for a scale and output size is that
member when the user gives no ``--weights``. A run uses one member per input size: where two share one (the x2
member and the x4 one for large faces both take 64 px), the one whose output fits the run's upscale. Any other
DIC-family file (the official ``DIC_CelebA.pth``, a user's own training run) is loaded by path; its configuration is
read off the tensor shapes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from dicface.configs.model import BACKPROJECTION_GEOMETRY, MAX_FRAMES, DICConfig
from dicface.models.atomic import atomic_output
from dicface.models.checkpoints import (
    check_compatible,
    read_state_dict,
    save_weights,
    sha256_file,
    trained_output_size,
)
from dicface.models.dic import DIC
from dicface.models.errors import CheckpointError, InputError, NoWeightsError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def user_weights_dir() -> Path:
    """The user's weights folder (``export-weights`` writes there): ``$DICFACE_WEIGHTS_DIR``, else
    ``$XDG_DATA_HOME/dicface/weights`` or ``~/.local/share/dicface/weights``."""
    explicit = os.environ.get("DICFACE_WEIGHTS_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "dicface" / "weights"
_KERNEL_TO_BP_SCALE = {kernel: scale for scale, (kernel, _, _) in BACKPROJECTION_GEOMETRY.items()}
# conv_in's input channels / 3 = frames * (input / 16)^2 -> (scale, frames); unique while frames <= MAX_FRAMES = 3
_WIDTH_TO_MEMBER = {frames * phases: (scale, frames) for phases, scale in {1: 8, 4: 4, 16: 2}.items()
                    for frames in range(1, MAX_FRAMES + 1)}


@dataclass(frozen=True)
class WeightsRecord:
    """A weights file and what is known about it (the JSON card beside shipped weights)."""

    name: str
    file: Path
    config: DICConfig
    sha256: str | None = None
    default: bool = False
    licence: str = ""
    source: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    natural_of: str | None = None  # a natural-detail member: the faithful member it was trained from

    @classmethod
    def from_card(cls, card_path: Path) -> WeightsRecord:
        try:
            card = json.loads(card_path.read_text())
            return cls(
                name=card["name"],
                file=card_path.parent / card["file"],
                config=DICConfig(**card["config"]),
                sha256=card.get("sha256"),
                default=bool(card.get("default", False)),
                licence=card.get("licence", ""),
                source=card.get("source", ""),
                metrics=card.get("metrics", {}),
                training=card.get("training", {}),
                natural_of=card.get("natural_of"),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{card_path}: invalid weights card ({type(exc).__name__}: {exc})") from exc


def list_weights(folder: Path | None = None) -> list[WeightsRecord]:
    """Cards of the weights in ``folder``, or (None) in the user's weights folder and then the package's, sorted by
    name; a name in the user's folder hides the package's, and so does a user's default member of a scale and output
    size."""
    folders = [folder] if folder is not None else [user_weights_dir(), WEIGHTS_DIR]
    found: dict[str, WeightsRecord] = {}
    default_kinds: set[tuple[int, int]] = set()
    for place in folders:
        if not place.is_dir():
            continue
        cards = sorted((WeightsRecord.from_card(p) for p in place.glob("*.json")), key=lambda r: r.name)
        for record in cards:
            if record.name in found:
                continue
            if record.default and (record.config.scale, record.config.output_size) in default_kinds:
                record = replace(record, default=False)
            found[record.name] = record
        default_kinds |= {(r.config.scale, r.config.output_size) for r in found.values()
                          if r.default and r.file.is_file()}
    return sorted(found.values(), key=lambda r: r.name)


def default_weights(folder: Path | None = None, scale: int = 8) -> WeightsRecord:
    """The card marked default for ``scale``; NoWeightsError (with what to do) when none is installed."""
    members = [r for r in list_weights(folder) if r.default and r.config.scale == scale and r.file.is_file()]
    if members:  # the 128-px member of the scale before one for large faces
        return min(members, key=lambda r: r.config.output_size)
    raise NoWeightsError(
        f"no default x{scale} DIC weights are installed in this package; pass --weights FILE "
        "(an official DIC_CelebA.pth, or a checkpoint from 'dicface train')"
    )


def family(
    weights: str | os.PathLike[str] | None = None, scale: int | None = None, folder: Path | None = None,
    upscale: float = 1.0,
) -> list[WeightsRecord]:
    """The members a run uses, smallest input first: the ``weights`` file alone (its card beside it, or its scale
    read off its shapes), or the package's default member of ``scale`` (its 128-px one), or the default members
    (each scale's, and those for large faces) when ``scale`` is None: one per input size, the one whose output is
    nearest (in ratio) to what a face of that input becomes in a frame scaled by ``upscale`` (the x4 member for
    large faces at x4, the x2 one of the same input below; a tie goes to the smaller output)."""
    if weights is not None:
        path = Path(weights)
        record = _card_beside(path)  # what the shapes cannot say: e.g. the output size
        if record is not None:
            if scale is not None and record.config.scale != scale:
                raise CheckpointError(f"{path}: a x{record.config.scale} member, not x{scale}; drop --scale or pass "
                                      f"x{scale} weights")
            return [record]
        cfg = infer_config(read_state_dict(path), source=str(path))
        if scale is not None and cfg.scale != scale:
            raise CheckpointError(f"{path}: a x{cfg.scale} member ({cfg.input_size}-px input), not x{scale}; "
                                  f"drop --scale or pass x{scale} weights")
        return [WeightsRecord(name=path.stem, file=path, config=cfg)]
    if scale is not None:
        return [default_weights(folder, scale)]
    members: dict[int, WeightsRecord] = {}
    for record in default_members(folder):
        size = record.config.input_size
        if size not in members or _output_misfit(record, upscale) < _output_misfit(members[size], upscale):
            members[size] = record
    if not members:
        default_weights(folder)  # raises NoWeightsError with what to do
    return [members[s] for s in sorted(members)]


def default_members(folder: Path | None = None) -> list[WeightsRecord]:
    """Every installed default member (each scale's, and those for large faces), by input and then output size."""
    records = [r for r in list_weights(folder) if r.default and r.file.is_file()]
    return sorted(records, key=lambda r: (r.config.input_size, r.config.output_size))


def _output_misfit(record: WeightsRecord, upscale: float) -> float:
    """How far a member's output is from the size its input's face takes in a frame scaled by ``upscale``: the
    larger of the two ratios, so 1 is a perfect fit."""
    wanted = record.config.input_size * upscale
    return max(record.config.output_size / wanted, wanted / record.config.output_size)


def _card_beside(path: Path) -> WeightsRecord | None:
    """The card next to a weights file that names it (``export_weights`` writes them so), if there is one."""
    card = path.with_suffix(".json")
    if not card.is_file():
        return None
    try:
        record = WeightsRecord.from_card(card)
    except CheckpointError:  # some other JSON file: the shapes say what they can
        return None
    return record if record.file.resolve() == path.resolve() else None


def infer_config(
    state: dict[str, Tensor], num_steps: int = DICConfig.num_steps, source: str = "weights",
    output_size: int = DICConfig.output_size,
) -> DICConfig:
    """Read a DIC configuration off a state dict's tensor shapes (the step count and the output size are not stored
    in weights: a card names them)."""
    if "conv_in.0.weight" not in state and "hg.res_center.conv_block.0.weight" in state:
        raise CheckpointError(
            f"{source}: holds only a landmark branch (like FB_HG_68_CelebA.pth); pass a full DIC checkpoint"
        )
    try:
        num_features = state["conv_in.0.weight"].shape[0] // 4
        scale, frames = _WIDTH_TO_MEMBER[state["conv_in.0.weight"].shape[1] // DICConfig.in_channels]
        kernel = state["first_block.upBlocks.0.0.weight"].shape[-1]
        return DICConfig(
            num_features=num_features,
            num_groups=sum(1 for k in state if k.startswith("first_block.upBlocks.") and k.endswith(".0.weight")),
            num_steps=num_steps,
            hg_num_features=state["HG.compress_in.weight"].shape[0] // 2,
            num_keypoints=state["HG.hg_conv_out.2.weight"].shape[0],
            num_fusion_blocks=sum(
                1 for k in state if k.startswith("block.fusion_block.resnet.") and k.endswith(".res.0.weight")
            ),
            bp_scale=_KERNEL_TO_BP_SCALE[kernel],
            scale=scale,
            frames=frames,
            output_size=output_size,
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise CheckpointError(
            f"{source}: not a DIC state dict: cannot read its configuration ({type(exc).__name__}: {exc})"
        ) from exc


def natural_twin(record: WeightsRecord) -> WeightsRecord | None:
    """The natural-detail member trained from ``record`` (a card beside it naming it in ``natural_of``), if any."""
    twins = [r for r in list_weights(record.file.parent) if r.natural_of == record.name and r.file.is_file()]
    return twins[0] if twins else None


def _read_checked(record: WeightsRecord | None, path: Path) -> dict[str, Tensor]:
    if record and record.sha256 and sha256_file(path) != record.sha256:
        raise CheckpointError(f"{path}: sha256 does not match its card {record.name}.json; reinstall the package")
    return read_state_dict(path)


def load_model(
    weights: str | os.PathLike[str] | WeightsRecord | None = None, num_steps: int | None = None,
    fidelity: float = 1.0,
) -> tuple[DIC, WeightsRecord]:
    """Build a DIC network and load weights into it strictly.

    Args:
        weights: a weights file, or a record of ``family()``; None for the package's default x8 weights. A card's
            sha256 is checked.
        num_steps: override the number of recurrent steps (default: the card's, or 4).
        fidelity: below 1, a shipped member's weights are blended with its natural-detail twin's (``natural_twin``;
            none: the member as it is), ``fidelity * faithful + (1 - fidelity) * natural`` tensor by tensor
            (network interpolation: both were trained from the same start, so the blend is a network between them).
    Returns:
        the network in eval mode on the CPU, and the record describing its weights (a blend's name says so).
    """
    if isinstance(weights, WeightsRecord):
        record = weights if weights.sha256 else None
        weights = weights.file
    else:
        record = default_weights() if weights is None else None
    path = record.file if record else Path(weights)
    state = _read_checked(record, path)
    cfg = infer_config(state, num_steps or (record.config.num_steps if record else DICConfig.num_steps), str(path),
                       record.config.output_size if record else DICConfig.output_size)
    if record and replace(record.config, num_steps=cfg.num_steps) != cfg:
        raise CheckpointError(f"{path}: tensor shapes do not match the configuration on its card")
    twin = natural_twin(record) if record and fidelity < 1 else None
    if twin is not None:
        if replace(twin.config, num_steps=cfg.num_steps) != cfg:
            raise CheckpointError(f"{twin.file}: a natural member of another configuration than {record.name}")
        natural = _read_checked(twin, twin.file)
        state = {k: fidelity * v + (1 - fidelity) * natural[k] for k, v in state.items()}
        record = replace(record, name=f"{record.name}+{twin.name} (fidelity {fidelity:g})")
    model = DIC(cfg)
    check_compatible(model, state, str(path))
    model.load_state_dict(state, strict=True)
    return model.eval(), record or WeightsRecord(name=path.stem, file=path, config=cfg)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


CELEBA_TERMS = (
    "Trained on CelebA images, which are for non-commercial research purposes only "
    "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html); these weights inherit that restriction. "
    "Training landmarks came from dlib's 68-point predictor (300-W data, non-commercial terms)."
)


def _stages(card_path: Path, scale: int) -> list[dict[str, Any]]:
    """The training stages on an existing card of a ``scale`` member (a card without a list is one stage)."""
    if not card_path.is_file():
        raise InputError(f"{card_path}: no card to add a training stage to; export without appending first")
    card = json.loads(card_path.read_text())
    if card.get("config", {}).get("scale", 8) != scale:
        raise InputError(f"{card_path}: a x{card['config']['scale']} member's card; these weights are x{scale}")
    training = card.get("training") or {}
    return list(training["stages"]) if "stages" in training else [training] if training else []


def export_weights(
    checkpoint: str | os.PathLike[str],
    name: str,
    folder: Path | None = None,
    *,
    default: bool = False,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    licence: str = CELEBA_TERMS,
    source: str = "trained by dicface (dicface train)",
    append_stage: bool = False,
    natural_of: str | None = None,
) -> WeightsRecord:
    """Write ``<name>.pt`` (the bare fp32 state dict) and its card ``<name>.json`` into ``folder`` (default: the
    user's weights folder, ``user_weights_dir``; the project ships a member with ``folder=WEIGHTS_DIR``).

    ``checkpoint`` is a trainer's ``best.pt``/``last.pt`` or any DIC state dict; the configuration is read off
    the shapes (the output size off a trainer's checkpoint, else 128). With ``default``, every other card of the
    same scale and output size in ``folder`` stops being the default.
    ``training`` describes how the weights were trained; with ``append_stage`` they continue the training of
    the weights now shipped as ``name`` (a card of the same scale must exist): the card keeps that card's stages
    and adds ``training`` as the last. ``metrics`` are the new weights' own; nothing is kept from the old card.
    ``natural_of``: these are the natural-detail twin of that shipped member (``load_model``'s ``fidelity``).
    """
    folder = user_weights_dir() if folder is None else folder
    state = read_state_dict(checkpoint)
    cfg = infer_config(state, source=str(checkpoint),
                       output_size=trained_output_size(checkpoint, DICConfig.output_size))
    model = DIC(cfg)
    check_compatible(model, state, str(checkpoint))
    if append_stage:
        training = {"stages": [*_stages(folder / f"{name}.json", cfg.scale), training or {}]}
    folder.mkdir(parents=True, exist_ok=True)
    digest = save_weights({k: v.float().contiguous() for k, v in state.items()}, folder / f"{name}.pt")
    card = {
        "name": name,
        "file": f"{name}.pt",
        "default": default,
        "config": cfg.to_dict(),
        "sha256": digest,
        "parameters": sum(v.numel() for v in model.state_dict().values()),
        "licence": licence,
        "source": source,
        "training": training or {},
        "metrics": metrics or {},
        **({"natural_of": natural_of} if natural_of else {}),
    }
    if default:
        for other in folder.glob("*.json"):
            if other.stem != name:
                data = json.loads(other.read_text())
                other_cfg = data.get("config", {})
                if data.get("default") and (other_cfg.get("scale", 8), other_cfg.get("output_size", 128)) == (
                        cfg.scale, cfg.output_size):
                    _write_json(other, {**data, "default": False})
    _write_json(folder / f"{name}.json", card)
    return WeightsRecord.from_card(folder / f"{name}.json")
