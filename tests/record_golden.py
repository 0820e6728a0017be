"""Rebuild ``tests/data/dic_golden.pt`` from the official DIC code (``Maclory/Deep-Iterative-Collaboration``).

    python -m tests.record_golden --official PATH/Deep-Iterative-Collaboration [-o tests/data/dic_golden.pt]

The official code is imported from that checkout (its ``code/`` folder) and from nowhere else: it is not part of
this repository (its licence is not ours to redistribute). ``torchvision``, which its ``modules/architecture.py``
imports for a VGG loss only, is replaced by an empty module where it is not installed.

Recorded, on CPU in fp32, for the weights of ``tests.golden.deterministic_state_dict`` (a function of each key's
name and shape, so the official network and ours get the same numbers) and the input of ``golden_input(1)``:
- ``official_keys``: (key, shape) of the released configuration's state dict;
- ``full``: the released configuration's final SR image and heatmaps, and the same with the seed heatmaps used in
  place of step 0's heatmaps for the first attention (what ``models.dic.DIC(seed_heatmaps=...)`` does; the
  official ``forward`` has no seed, so its steps are run here, one by one, on the official modules);
- ``tiny``: ``tests.conftest.TINY``, whose feedback blocks use back-projection stride 2 (the official blocks built
  with ``upscale_factor=2``; the official ``DIC`` itself only builds x8).
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch
from torch import Tensor, nn

from dicface.configs.model import DICConfig
from tests.conftest import TINY
from tests.golden import deterministic_state_dict, golden_input

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "dic_golden.pt"


def _import_official(checkout: Path) -> types.SimpleNamespace:
    code = checkout / "code"
    if not (code / "networks" / "dic_arch.py").is_file():
        raise SystemExit(f"{checkout}: not a checkout of Maclory/Deep-Iterative-Collaboration (no code/networks)")
    try:
        import torchvision  # noqa: F401 -- only the official VGG loss uses it
    except ImportError:
        sys.modules["torchvision"] = types.ModuleType("torchvision")
    sys.path.insert(0, str(code))
    from networks.dic_arch import DIC
    from networks.srfbn_hg_arch import FeedbackBlockCustom, FeedbackBlockHeatmapAttention, merge_heatmap_5

    return types.SimpleNamespace(DIC=DIC, FeedbackBlockCustom=FeedbackBlockCustom,
                                 FeedbackBlockHeatmapAttention=FeedbackBlockHeatmapAttention,
                                 merge_heatmap_5=merge_heatmap_5)


def official_network(official: types.SimpleNamespace, cfg: DICConfig) -> nn.Module:
    """The official ``DIC`` for one of our configurations, with the deterministic golden weights."""
    cpu = torch.device("cpu")
    opt = {"in_channels": cfg.in_channels, "out_channels": cfg.out_channels, "num_groups": cfg.num_groups,
           "hg_num_feature": cfg.hg_num_features, "hg_num_keypoints": cfg.num_keypoints,
           "num_steps": cfg.num_steps, "num_features": cfg.num_features, "scale": 8, "detach_attention": False,
           "num_fusion_block": cfg.num_fusion_blocks}
    model = official.DIC(opt, cpu)
    if cfg.bp_scale != 8:
        nf, groups = cfg.num_features, cfg.num_groups
        model.first_block = official.FeedbackBlockCustom(nf, groups, cfg.bp_scale, "prelu", None, nf)
        model.block = official.FeedbackBlockHeatmapAttention(nf, groups, cfg.bp_scale, "prelu", None, 5,
                                                             cfg.num_fusion_blocks, device=cpu)
        model.block.should_reset = False
    model.load_state_dict(deterministic_state_dict(model), strict=True)
    return model.eval()


def run_steps(official: types.SimpleNamespace, model: nn.Module, lr: Tensor, seed: Tensor | None = None
              ) -> tuple[Tensor, Tensor]:
    """The official forward, step by step, with ``seed`` (B, 68, 32, 32) in place of step 0's heatmaps for the
    first attention when given. Returns the last step's SR image and heatmaps."""
    up = nn.functional.interpolate(lr, scale_factor=8, mode="bilinear", align_corners=False)
    x = model.feat_in(model.conv_in(lr))
    features = model.first_block(x)
    model.block.last_hidden = features
    sr = up + model.conv_out(model.out(features))
    heat, hidden = model.HG(sr, None)
    guide = heat if seed is None else seed
    for _ in range(1, model.num_steps):
        features = model.block(x, official.merge_heatmap_5(guide, False))
        sr = up + model.conv_out(model.out(features))
        heat, hidden = model.HG(sr, hidden)
        guide = heat
    return sr, heat


def record(checkout: Path) -> dict[str, object]:
    official = _import_official(checkout)
    lr, seed = golden_input(1)
    golden: dict[str, object] = {}
    with torch.no_grad():
        for name, cfg in (("full", DICConfig()), ("tiny", TINY)):
            model = official_network(official, cfg)
            sr, heat = run_steps(official, model, lr)
            golden[name] = {"sr": sr, "heat": heat}
            if name == "full":
                golden["official_keys"] = [(k, list(v.shape)) for k, v in model.state_dict().items()]
                sr_s, heat_s = run_steps(official, model, lr, seed)
                golden[name] |= {"sr_seeded": sr_s, "heat_seeded": heat_s}
    return golden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of the official repository")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.save(record(args.official), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
