"""Reading and writing weights files safely and strictly.

Files are read with ``torch.load(weights_only=True)``: a file holding any pickled object other than tensors and
plain containers is refused, never executed. Accepted layouts: a bare state dict, or a dict holding it under
``state_dict``, ``model`` or ``netG`` (official DIC/DICGAN files); a ``module.`` prefix (DataParallel) is stripped.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dicface.models.atomic import atomic_output
from dicface.models.errors import CheckpointError, InputNotFound

CONTAINER_KEYS = ("state_dict", "model", "netG")
_SHOW = 3  # how many offending keys an error names


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Load the state dict stored in ``path`` (see the module docstring for the accepted layouts)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"{path}: weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails on corrupt files with many error types
        if isinstance(exc, pickle.UnpicklingError) and "WeightsUnpickler error" in str(exc) and _is_pickle(path):
            detail = str(exc).split("WeightsUnpickler error:")[1].strip().splitlines()[0].split(" was not")[0]
            raise CheckpointError(
                f"{path}: refused to load: the file holds pickled Python objects, not only tensors; "
                f"nothing in it was executed ({detail[:120]})"
            ) from exc
        reason = str(exc).split(". ")[0].strip()[:160]
        raise CheckpointError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: {reason})") from exc
    return _unwrap(obj, path)


def trained_output_size(path: str | os.PathLike[str], default: int) -> int:
    """The output size a trainer's checkpoint (``last.pt``, ``best.pt``: its ``model_config``) was trained for;
    ``default`` for a bare state dict, which does not say."""
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = obj.get("model_config") if isinstance(obj, Mapping) else None
    return int(config.get("output_size", default)) if isinstance(config, Mapping) else default


def _is_pickle(path: Path) -> bool:
    """A torch.save zip archive (holding a pickle) or a bare pickle (protocol 2+ starts with PROTO, 0x80)."""
    with open(path, "rb") as f:
        head = f.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def _unwrap(obj: Any, path: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: no state dict found (expected tensors, or one under {CONTAINER_KEYS})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: not a state dict: entry {bad[0]!r} is not a named tensor")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def check_compatible(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Raise a one-line CheckpointError naming the first missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if items:
            more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:_SHOW])}{more}")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit {type(model).__name__}: " + "; ".join(problems))


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a weights file into ``model`` strictly. A DIC model also accepts a bare landmark-branch file
    (``FB_HG_68_CelebA.pth``: keys without ``HG.``), loaded into ``model.HG`` only."""
    state = read_state_dict(path)
    target = model
    hg = getattr(model, "HG", None)
    if isinstance(hg, nn.Module) and not any(k.startswith("HG.") for k in state) and set(state) <= set(
        hg.state_dict()
    ):
        target = hg
    check_compatible(target, state, str(path))
    target.load_state_dict(state, strict=True)
    return model


def load_from_member(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Initialise a DIC-family member from the weights of a member of another scale (e.g. x4 from x8), strictly.

    Every tensor but the stem's ``conv_in.0.weight`` has the same shape across members. Where that one has more
    input channels (the new member pixel-unshuffles its larger input by r), each source RGB channel's kernel is
    spread evenly over that channel's r*r phases: the new member starts as the source network run on its input
    box-downscaled by r. Same-scale weights load unchanged. A multi-frame member (``cfg.frames`` = F) takes a
    single-frame member of its scale with zero kernels for the earlier frames: it starts as that member. A member
    with more back-projection groups (``cfg.num_groups``) takes one with fewer: the extra groups keep their fresh
    initialisation and ``compress_out`` reads them through zero kernels, so it too starts as the member it came from.
    """
    state = dict(read_state_dict(path))
    expected = model.state_dict()
    _widen_stem(state, expected, getattr(getattr(model, "cfg", None), "frames", 1))
    _add_groups(state, expected)
    check_compatible(model, state, str(path))
    model.load_state_dict(state, strict=True)


def _widen_stem(state: dict[str, Tensor], expected: Mapping[str, Tensor], frames: int) -> None:
    """Zero kernels for the earlier frames, then the source's kernels spread over the unshuffled phases."""
    key = "conv_in.0.weight"
    want, given = expected.get(key), state.get(key)
    if want is None or given is None:
        return
    if frames > 1 and given.shape[1] * frames == want.shape[1]:
        given = state[key] = _pad_inputs(given, want.shape[1])
    if given.shape != want.shape:
        phases = want.shape[1] // given.shape[1]
        if given.shape[1] * phases == want.shape[1] and given.shape[0] == want.shape[0]:
            state[key] = given.repeat_interleave(phases, dim=1) / phases


def _pad_inputs(kernel: Tensor, width: int) -> Tensor:
    """(O, I, k, k) -> (O, width, k, k): zero kernels for the new input channels."""
    return torch.cat([kernel, kernel.new_zeros(kernel.shape[0], width - kernel.shape[1], *kernel.shape[2:])], dim=1)


_GROUP_PARTS = ("upBlocks", "downBlocks", "uptranBlocks", "downtranBlocks")


def _add_groups(state: dict[str, Tensor], expected: Mapping[str, Tensor]) -> None:
    """Fill the back-projection groups the source lacks from ``expected`` (the fresh model) and widen each
    block's ``compress_out`` with zero kernels for them; nothing happens unless only such groups are missing."""
    missing = [k for k in expected if k not in state]
    if not missing or not all(k.count(".") > 1 and k.split(".")[1] in _GROUP_PARTS for k in missing):
        return
    for block in {k.split(".")[0] for k in missing}:
        key = f"{block}.compress_out.0.weight"
        given, want = state.get(key), expected[key]
        if given is None or given.shape[0] != want.shape[0] or given.shape[1] > want.shape[1]:
            return
        state[key] = _pad_inputs(given, want.shape[1])
    state.update({k: expected[k].clone() for k in missing})


def load_part(module: nn.Module, path: str | os.PathLike[str], prefix: str) -> None:
    """Load ``module`` strictly from the ``prefix``-ed keys of a file (other keys ignored), or from the whole file
    when none has the prefix (a file of that part alone)."""
    state = read_state_dict(path)
    if any(k.startswith(prefix) for k in state):
        state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    check_compatible(module, state, str(path))
    module.load_state_dict(state, strict=True)


def load_landmark_branch(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a landmark branch into ``model.HG`` strictly: a bare hourglass file (``FB_HG_68_CelebA.pth``, a
    ``dicface train`` HG pre-training run), or the ``HG.*`` part of a whole DIC checkpoint (other keys ignored)."""
    load_part(model.HG, path, "HG.")


def save_weights(state: Mapping[str, Any], path: str | os.PathLike[str]) -> str:
    """Write ``state`` (tensors and plain containers) atomically; returns the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(dict(state), tmp)
    return sha256_file(path)


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
