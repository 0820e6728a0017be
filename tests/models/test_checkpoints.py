from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dicface.configs.model import DICConfig
from dicface.models.checkpoints import load_landmark_branch, load_weights, read_state_dict, save_weights, sha256_file
from dicface.models.dic import DIC
from dicface.models.errors import CheckpointError, InputError, InputNotFound, NoWeightsError
from dicface.models.registry import default_weights, infer_config, list_weights, load_model
from tests.conftest import TINY


@pytest.mark.parametrize("layout", ["bare", "state_dict", "model", "netG", "module_prefix"])
def test_every_container_layout_loads_strictly(tmp_path: Path, tiny_model: DIC, layout: str) -> None:
    state = tiny_model.state_dict()
    obj = {
        "bare": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state},
        "netG": {"netG": state, "netD": {"w": torch.zeros(1)}},
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
    }[layout]
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    fresh = DIC(TINY)
    load_weights(fresh, path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), state.values(), strict=True))


def test_strict_error_names_the_first_offending_keys(tmp_path: Path, tiny_model: DIC) -> None:
    state = dict(tiny_model.state_dict())
    state.pop("conv_out.0.bias")
    state["extra.weight"] = torch.zeros(1)
    state["out.0.bias"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_weights(DIC(TINY), path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert "1 missing: conv_out.0.bias" in msg and "1 unexpected: extra.weight" in msg
    assert "out.0.bias (3,) != (8,)" in msg


def test_landmark_branch_file_loads_into_hg(tmp_path: Path, tiny_model: DIC) -> None:
    path = tmp_path / "FB_HG.pth"
    torch.save(tiny_model.HG.state_dict(), path)  # keys without the HG. prefix, like FB_HG_68_CelebA.pth
    fresh = DIC(TINY)
    load_weights(fresh, path)
    assert torch.equal(fresh.HG.compress_in.weight, tiny_model.HG.compress_in.weight)
    with pytest.raises(CheckpointError, match="only a landmark branch"):
        load_model(path)


def test_pickled_objects_are_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n", b"\xff\xd8\xff\xe0JFIF"])
def test_unreadable_files_are_checkpoint_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable"):
        read_state_dict(path)


def test_truncated_and_missing_files(tmp_path: Path, tiny_weights: Path) -> None:
    cut = tmp_path / "cut.pth"
    cut.write_bytes(tiny_weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        read_state_dict(cut)
    with pytest.raises(InputNotFound):
        read_state_dict(tmp_path / "nope.pth")


def test_non_tensor_entries_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"a": [1, 2, 3]}, path)
    with pytest.raises(CheckpointError, match="not a named tensor"):
        read_state_dict(path)


def test_load_model_reads_the_configuration_off_the_shapes(tiny_weights: Path) -> None:
    model, record = load_model(tiny_weights, num_steps=3)
    assert model.cfg == TINY and record.config == TINY and not model.training
    assert infer_config(DIC().state_dict()) == DIC().cfg


def test_save_is_atomic_and_returns_the_sha256(tmp_path: Path, tiny_model: DIC) -> None:
    path = tmp_path / "sub" / "w.pth"
    digest = save_weights(tiny_model.state_dict(), path)
    assert digest == sha256_file(path) and len(digest) == 64
    assert [p.name for p in path.parent.iterdir()] == ["w.pth"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600


def test_registry_cards_and_the_default(tmp_path: Path, tiny_model: DIC) -> None:
    with pytest.raises(NoWeightsError, match="--weights"):
        default_weights(tmp_path)
    digest = save_weights(tiny_model.state_dict(), tmp_path / "tiny.pth")
    card = {"name": "tiny", "file": "tiny.pth", "config": TINY.to_dict(), "sha256": digest, "default": True}
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    records = list_weights(tmp_path)
    assert [r.name for r in records] == ["tiny"] and records[0].config == TINY
    assert default_weights(tmp_path).file == tmp_path / "tiny.pth"
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(CheckpointError, match="invalid weights card"):
        list_weights(tmp_path)


def test_exported_weights_become_the_default(tmp_path: Path, tiny_model: DIC) -> None:
    from dicface.models.registry import export_weights

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": tiny_model.state_dict(), "iteration": 7}, run / "last.pt")  # a trainer checkpoint
    folder = tmp_path / "weights"
    old = export_weights(run / "last.pt", "old", folder, default=True)
    new = export_weights(run / "last.pt", "new", folder, default=True, metrics={"psnr_y": 1.0})
    assert not json.loads((folder / "old.json").read_text())["default"]
    assert new.default and new.sha256 == sha256_file(folder / "new.pt") and old.file.is_file()
    assert default_weights(folder).name == "new" and default_weights(folder).metrics == {"psnr_y": 1.0}
    card = json.loads((folder / "new.json").read_text())
    assert card["config"] == TINY.to_dict() | {"num_steps": 4} and "non-commercial" in card["licence"]


def test_a_family_has_one_default_member_per_scale(tmp_path: Path) -> None:
    from dicface.models.registry import export_weights, family

    folder = tmp_path / "weights"
    for scale in (8, 4, 2):
        torch.manual_seed(scale)
        torch.save(DIC(replace(TINY, scale=scale)).state_dict(), tmp_path / f"x{scale}.pt")
        export_weights(tmp_path / f"x{scale}.pt", f"m{scale}", folder, default=True)
    export_weights(tmp_path / "x4.pt", "m4b", folder, default=True)  # replaces m4 only
    assert [r.name for r in family(folder=folder)] == ["m8", "m4b", "m2"]  # smallest input first
    assert [r.name for r in family(scale=2, folder=folder)] == ["m2"]
    assert default_weights(folder).name == "m8" and default_weights(folder, scale=4).name == "m4b"
    given = family(tmp_path / "x2.pt")
    assert len(given) == 1 and given[0].config.scale == 2 and given[0].sha256 is None
    with pytest.raises(CheckpointError, match="a x2 member"):
        family(tmp_path / "x2.pt", scale=4)
    model, record = load_model(family(scale=4, folder=folder)[0])
    assert record.name == "m4b" and model.cfg.input_size == 32


def test_landmark_branch_from_a_bare_file_or_a_whole_checkpoint(tmp_path: Path, tiny_model: DIC) -> None:
    bare, whole = tmp_path / "hg.pt", tmp_path / "dic.pt"
    torch.save(tiny_model.HG.state_dict(), bare)
    torch.save({"model": tiny_model.state_dict()}, whole)
    for path in (bare, whole):
        fresh = DIC(TINY)
        load_landmark_branch(fresh, path)
        assert torch.equal(fresh.HG.compress_in.weight, tiny_model.HG.compress_in.weight)
    other = tmp_path / "other.pt"
    torch.save(DIC(replace(TINY, hg_num_features=32)).HG.state_dict(), other)
    with pytest.raises(CheckpointError, match="mis-shaped"):
        load_landmark_branch(DIC(TINY), other)


def test_a_further_training_stage_is_added_to_the_card(tmp_path: Path, tiny_model: DIC) -> None:
    from dicface.models.registry import export_weights

    torch.save(tiny_model.state_dict(), tmp_path / "w.pt")
    folder = tmp_path / "weights"
    with pytest.raises(InputError, match="no card to add a training stage to"):
        export_weights(tmp_path / "w.pt", "m", folder, training={"what": "two"}, append_stage=True)
    export_weights(tmp_path / "w.pt", "m", folder, training={"what": "one"}, metrics={"a": 1})
    export_weights(tmp_path / "w.pt", "m", folder, training={"what": "two"}, metrics={"b": 2}, append_stage=True)
    record = export_weights(tmp_path / "w.pt", "m", folder, training={"what": "three"}, append_stage=True)
    assert [s["what"] for s in record.training["stages"]] == ["one", "two", "three"] and record.metrics == {}
    other = DIC(replace(TINY, scale=4))
    torch.save(other.state_dict(), tmp_path / "x4.pt")
    with pytest.raises(InputError, match="a x8 member's card; these weights are x4"):
        export_weights(tmp_path / "x4.pt", "m", folder, append_stage=True)


def test_fidelity_blends_a_member_with_its_natural_twin(tmp_path: Path) -> None:
    """fidelity 1: the faithful member; 0: its natural-detail twin; between: every tensor blended (network
    interpolation). A member without a twin, or a weights file, is loaded as it is."""
    from dicface.models.registry import export_weights, family, load_model

    folder = tmp_path / "weights"
    states = {}
    for name in ("faithful", "natural"):
        torch.manual_seed(len(name))
        states[name] = DIC(replace(TINY, scale=4)).state_dict()
        torch.save(states[name], tmp_path / f"{name}.pt")
    export_weights(tmp_path / "faithful.pt", "m4", folder, default=True)
    export_weights(tmp_path / "natural.pt", "m4-natural", folder, natural_of="m4")
    assert [r.name for r in family(folder=folder)] == ["m4"]  # the natural member is no default
    record = family(folder=folder)[0]
    key = "conv_out.0.weight"
    for fidelity, expected in ((1.0, states["faithful"][key]), (0.0, states["natural"][key]),
                               (0.25, 0.25 * states["faithful"][key] + 0.75 * states["natural"][key])):
        model, loaded = load_model(record, fidelity=fidelity)
        assert torch.allclose(model.state_dict()[key], expected, atol=1e-7)
        assert ("m4-natural" in loaded.name) == (fidelity < 1)
    plain, _ = load_model(tmp_path / "faithful.pt", fidelity=0.0)  # a file: no twin
    assert torch.equal(plain.state_dict()[key], states["faithful"][key])


def _family_with_a_large_member(tmp_path: Path, large: DICConfig, name: str) -> Path:
    """A weights folder of default x4 and x2 members (m4, m2) and ``large``, exported from a trainer's checkpoint
    (which says its output size) as ``name``."""
    from dicface.models.registry import export_weights

    folder = tmp_path / "weights"
    for scale in (4, 2):
        torch.manual_seed(scale)
        torch.save(DIC(replace(TINY, scale=scale)).state_dict(), tmp_path / f"x{scale}.pt")
        export_weights(tmp_path / f"x{scale}.pt", f"m{scale}", folder, default=True)
    torch.save({"model": DIC(large).state_dict(), "model_config": large.to_dict()}, tmp_path / "last.pt")
    export_weights(tmp_path / "last.pt", name, folder, default=True)
    return folder


def test_a_large_face_member_joins_the_family_beside_its_scales_member(tmp_path: Path) -> None:
    """An x2 member for large faces (192-px output: trained so, its trainer's checkpoint says) is exported with its
    output size on the card, stays a default beside the 128-px x2 member, and loads at its size."""
    from dicface.models.registry import family

    large = replace(TINY, scale=2, output_size=192)
    folder = _family_with_a_large_member(tmp_path, large, "m2-large")
    assert [(r.name, r.config.input_size) for r in family(folder=folder)] == [("m4", 32), ("m2", 64),
                                                                            ("m2-large", 96)]
    assert default_weights(folder, scale=2).name == "m2"  # a single x2 member: the 128-px one
    model, record = load_model(family(folder=folder)[-1])
    assert model.cfg == replace(large, num_steps=4) and record.config.name == "x2/192"  # the card says 4 steps
    out, heat = model(torch.zeros(1, 3, 96, 96))
    assert out[-1].shape == (1, 3, 192, 192) and heat[-1].shape == (1, 68, 48, 48)
    (given,) = family(folder / "m2-large.pt")  # passed as a file: its card beside it gives the output size
    assert given.config.output_size == 192 and given.sha256


def test_the_family_of_an_upscale_takes_the_member_whose_output_fits_it(tmp_path: Path) -> None:
    """An x4 member for large faces (64 -> 256) shares its input size with the x2 member (64 -> 128): a frame
    scaled x3 or more takes the x4 one, a frame scaled less the x2 one; every default is benchmarked."""
    from dicface.models.registry import default_members, family

    folder = _family_with_a_large_member(tmp_path, replace(TINY, scale=4, output_size=256), "m4-large")
    for upscale, names in ((1.0, ["m4", "m2"]), (2.0, ["m4", "m2"]), (3.0, ["m4", "m4-large"]),
                           (4.0, ["m4", "m4-large"])):
        assert [r.name for r in family(folder=folder, upscale=upscale)] == names, upscale
    assert [r.name for r in default_members(folder)] == ["m4", "m2", "m4-large"]
    assert default_weights(folder, scale=4).name == "m4"
