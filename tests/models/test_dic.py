"""The DIC network against the official implementation: keys, shapes, parameter counts, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dicface.configs.model import DICConfig
from dicface.models.dic import DIC
from tests.conftest import TINY
from tests.golden import deterministic_state_dict, golden_input

GOLDEN = torch.load(Path(__file__).resolve().parents[1] / "data" / "dic_golden.pt", weights_only=True)


def test_state_dict_keys_and_shapes_equal_the_official_list() -> None:
    ours = [(k, list(v.shape)) for k, v in DIC().state_dict().items()]
    assert ours == [(k, list(s)) for k, s in GOLDEN["official_keys"]]
    assert len(ours) == 296
    assert not any(k.startswith("module.") for k, _ in ours)


def test_parameter_counts_match_the_release() -> None:
    model = DIC()
    total = sum(p.numel() for p in model.parameters())
    hg = sum(p.numel() for p in model.HG.parameters())
    assert (total, total - hg, hg) == (21_803_849, 9_804_677, 11_999_172)


def test_design_key_examples_have_the_documented_shapes() -> None:
    sd = DIC().state_dict()
    assert sd["conv_in.0.weight"].shape == (192, 3, 3, 3)
    assert sd["first_block.upBlocks.3.0.weight"].shape == (48, 48, 12, 12)
    assert sd["block.uptranBlocks.4.0.weight"].shape == (48, 288, 1, 1)
    assert sd["block.compress_in.0.weight"].shape == (48, 96, 1, 1)
    assert sd["first_block.compress_in.0.weight"].shape == (48, 48, 1, 1)
    assert sd["block.fusion_block.resnet.6.res.2.weight"].shape == (240, 48, 3, 3)
    assert sd["out.0.weight"].shape == (48, 48, 8, 8)
    assert sd["HG.compress_in.weight"].shape == (512, 512, 1, 1)
    assert sd["HG.hg_conv_out.2.weight"].shape == (68, 256, 1, 1)


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> bool:
    return bool((a - b).abs().max() <= rel * max(1.0, float(b.abs().max())))


@pytest.mark.parametrize("name,cfg", [("tiny", TINY), ("full", DICConfig())])
def test_outputs_match_the_official_implementation(name: str, cfg: DICConfig) -> None:
    """Golden outputs were recorded once with a transcription of the official code (tests/data/README.md)."""
    model = DIC(cfg).eval()
    model.load_state_dict(deterministic_state_dict(model), strict=True)
    lr, seed = golden_input(1)
    with torch.no_grad():
        sr, heat = model(lr)
    assert _close(sr[-1], GOLDEN[name]["sr"]) and _close(heat[-1], GOLDEN[name]["heat"])
    if name == "full":
        with torch.no_grad():
            sr_s, heat_s = model(lr, seed_heatmaps=seed)
        assert _close(sr_s[-1], GOLDEN[name]["sr_seeded"]) and _close(heat_s[-1], GOLDEN[name]["heat_seeded"])


def test_forward_returns_every_step(tiny_model: DIC) -> None:
    sr, heat = tiny_model(torch.rand(2, 3, 16, 16) - 0.45)
    assert len(sr) == len(heat) == TINY.num_steps
    assert all(s.shape == (2, 3, 128, 128) for s in sr)
    assert all(h.shape == (2, 68, 32, 32) for h in heat)
    assert all(torch.isfinite(t).all() for t in sr + heat)


def test_every_parameter_gets_a_gradient(tiny_model: DIC) -> None:
    sr, heat = tiny_model.train()(torch.rand(2, 3, 16, 16) - 0.45)
    (sum(s.abs().mean() for s in sr) + sum(h.pow(2).mean() for h in heat)).backward()
    missing = [n for n, p in tiny_model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_seed_heatmaps_replace_only_the_first_attention(tiny_model: DIC) -> None:
    lr = torch.rand(2, 3, 16, 16) - 0.45
    with torch.no_grad():
        sr, heat = tiny_model(lr)
        sr_own, _ = tiny_model(lr, seed_heatmaps=heat[0])  # seeding with step 0's own estimate changes nothing
        seed = torch.zeros(2, 68, 32, 32)
        seed[:, :, 8, 8] = 1.0
        sr_seed, heat_seed = tiny_model(lr, seed_heatmaps=seed)
    assert all(torch.equal(a, b) for a, b in zip(sr, sr_own, strict=True))
    assert torch.equal(sr_seed[0], sr[0]) and torch.equal(heat_seed[0], heat[0])  # step 0 never sees the seed
    assert not torch.allclose(sr_seed[1], sr[1])


def test_cheaper_backprojection_keeps_shapes() -> None:
    model = DIC(DICConfig(num_features=16, num_groups=3, bp_scale=4, hg_num_features=32, num_fusion_blocks=2)).eval()
    with torch.no_grad():
        sr, heat = model(torch.zeros(1, 3, 16, 16))
    assert sr[-1].shape == (1, 3, 128, 128) and heat[-1].shape == (1, 68, 32, 32)


@pytest.mark.parametrize(
    "kwargs", [{"scale": 3}, {"bp_scale": 3}, {"num_steps": 0}, {"num_keypoints": 194}, {"hg_num_features": 30}]
)
def test_invalid_configurations_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        DICConfig(**kwargs)


def test_wrong_input_size_is_a_clear_error(tiny_model: DIC) -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        tiny_model(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("scale", [8, 4, 2])
def test_every_member_maps_its_input_to_128_px_at_the_same_feature_size(scale: int) -> None:
    from dataclasses import replace

    from dicface.models.registry import infer_config

    cfg = replace(TINY, scale=scale)
    model = DIC(cfg).eval()
    size = 128 // scale
    assert cfg.input_size == size
    assert infer_config(model.state_dict(), num_steps=TINY.num_steps) == cfg  # the scale is read off conv_in
    assert model.state_dict()["conv_in.0.weight"].shape[1] == 3 * (size // 16) ** 2
    with torch.no_grad():
        srs, heats = model(torch.zeros(2, 3, size, size))
    assert srs[-1].shape == (2, 3, 128, 128) and heats[-1].shape == (2, 68, 32, 32)
    with pytest.raises(ValueError, match=f"expects \\(B, 3, {size}, {size}\\)"):
        model(torch.zeros(1, 3, 24, 24))


def test_a_member_initialised_from_another_starts_as_it_on_a_box_downscaled_input(tmp_path: Path) -> None:
    from dataclasses import replace

    import torch.nn.functional as F

    from dicface.models.checkpoints import load_from_member

    torch.manual_seed(0)
    x8 = DIC(TINY).eval()
    torch.save(x8.state_dict(), tmp_path / "x8.pt")
    x4 = DIC(replace(TINY, scale=4)).eval()
    load_from_member(x4, tmp_path / "x8.pt")
    lr = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        features4 = x4.conv_in(x4.stem(lr))
        features8 = x8.conv_in(F.avg_pool2d(lr, 2))
    assert torch.allclose(features4, features8, atol=1e-5)
    assert all(torch.equal(v, x8.state_dict()[k]) for k, v in x4.state_dict().items() if k != "conv_in.0.weight")


@pytest.mark.parametrize("scale", [8, 4, 2])
def test_a_multi_frame_member_starts_as_its_single_frame_member_and_its_shapes_name_it(
        tmp_path: Path, scale: int) -> None:
    """Zero kernels for the earlier frames: whatever they hold, the new member's output is the member's it came
    from; the state dict's conv_in width names the scale and the frame count."""
    from dataclasses import replace

    from dicface.models.checkpoints import load_from_member
    from dicface.models.registry import infer_config

    torch.manual_seed(0)
    single = DIC(replace(TINY, scale=scale)).eval()
    torch.save(single.state_dict(), tmp_path / "single.pt")
    multi = DIC(replace(TINY, scale=scale, frames=3)).eval()
    load_from_member(multi, tmp_path / "single.pt")
    assert infer_config(multi.state_dict(), num_steps=TINY.num_steps) == multi.cfg
    size = 128 // scale
    lr = torch.rand(2, 9, size, size) - 0.5
    with torch.no_grad():
        assert torch.allclose(multi(lr)[0][-1], single(lr[:, :3])[0][-1], atol=1e-5)
    with pytest.raises(ValueError, match=f"expects \\(B, 9, {size}, {size}\\)"):
        multi(lr[:, :3])
    with pytest.raises(ValueError, match="frames must be 1 to 3"):
        replace(TINY, frames=4)


def test_a_member_with_more_groups_starts_as_the_member_it_came_from(tmp_path: Path) -> None:
    """The extra back-projection groups are read through zero kernels: same output, then they train."""
    from dataclasses import replace

    from dicface.models.checkpoints import load_from_member
    from dicface.models.registry import infer_config

    torch.manual_seed(0)
    source = DIC(replace(TINY, scale=4, frames=3)).eval()
    torch.save(source.state_dict(), tmp_path / "source.pt")
    deeper = DIC(replace(TINY, scale=4, frames=3, num_groups=TINY.num_groups + 2)).eval()
    load_from_member(deeper, tmp_path / "source.pt")
    assert infer_config(deeper.state_dict(), num_steps=TINY.num_steps) == deeper.cfg
    lr = torch.rand(2, 9, 32, 32) - 0.5
    with torch.no_grad():
        assert torch.allclose(deeper(lr)[0][-1], source(lr)[0][-1], atol=1e-5)
    srs, _ = deeper(lr)
    srs[-1].square().mean().backward()
    extra = deeper.block.compress_out[0].weight.grad[:, source.cfg.num_groups * TINY.num_features:]
    assert extra.abs().sum() > 0
