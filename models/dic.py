"""DIC: deep face super-resolution by iterative collaboration of recovery and landmark estimation (Ma et al. 2020).

The network knows nothing of losses, data, files or devices. Its state-dict keys and shapes equal the official
implementation's (``Maclory/Deep-Iterative-Collaboration``) for the released configuration, so official
checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from models.blocks import BACKPROJECTION_GEOMETRY, AttentiveFusion, FeedbackBlock, deconv_prelu
from models.heatmaps import merge_to_five
from models.hourglass import FeedbackHourglass

OUTPUT_SIZE = 128
SCALES = (8, 4, 2)  # the family's members: 16-, 32- and 64-px inputs


@dataclass(frozen=True)
class DICConfig:
    """Network size. The defaults are the released DIC configuration (21,803,849 parameters).

    ``scale`` is the upscaling factor to the 128-px output: 8 (released, 16-px input), 4 (32 px) or 2 (64 px). The
    core always works on 32x32 features: a 16-px input is pixel-shuffled up to them as in the released DIC, larger
    inputs are first pixel-unshuffled to 16x16 (``conv_in`` then takes 3 * (input / 16)^2 channels), so every member
    costs about the same per face. The global residual is DIC's bilinear upscale at x8 and bicubic at x4/x2
    (a sharper base where the input holds more detail; measured +0.7 dB early in x2 training, DESIGN section 3).
    ``bp_scale`` is the stride of the back-projection units inside the feedback blocks: 8 (released) projects the
    32-px features to 256 px and back; 2 or 4 are much cheaper variants of the same algorithm.
    """

    num_features: int = 48
    num_groups: int = 6
    num_steps: int = 4
    hg_num_features: int = 256
    num_keypoints: int = 68
    num_fusion_blocks: int = 7
    scale: int = 8
    bp_scale: int = 8
    in_channels: int = 3
    out_channels: int = 3

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES} (input {[OUTPUT_SIZE // s for s in SCALES]} px), "
                             f"got {self.scale}")
        if self.bp_scale not in BACKPROJECTION_GEOMETRY:
            raise ValueError(f"bp_scale must be one of {sorted(BACKPROJECTION_GEOMETRY)}, got {self.bp_scale}")
        if self.num_steps < 1 or self.num_groups < 1 or self.num_features < 1:
            raise ValueError(f"num_steps, num_groups and num_features must be positive: {self}")
        if self.num_keypoints not in (5, 68):
            raise ValueError(f"num_keypoints must be 68 (iBUG) or 5, got {self.num_keypoints}")
        if self.hg_num_features % 4:
            raise ValueError(f"hg_num_features must be divisible by 4, got {self.hg_num_features}")

    @property
    def input_size(self) -> int:
        """Side of the LR input in pixels (16, 32 or 64)."""
        return OUTPUT_SIZE // self.scale

    @property
    def residual_mode(self) -> str:
        """Interpolation of the global residual: DIC's bilinear at x8, bicubic for the larger inputs."""
        return "bilinear" if self.scale == 8 else "bicubic"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class DIC(nn.Module):
    """DIC: recovery and landmark estimation in turn, 16 (or 32, 64) -> 128 px.

    Shape:
        lr: (B, 3, S, S) float RGB, S = cfg.input_size, in [0, 1] minus the CelebA mean (see ``models.faces``)
        seed_heatmaps: optional (B, K, 32, 32) heatmaps used in place of step 0's estimate to build the attention
            of the first attentive step (the tracker's landmarks in the video pipeline)
        returns: sr, heatmaps -- lists of num_steps tensors (B, 3, 128, 128) and (B, K, 32, 32), same space as lr
    """

    def __init__(self, cfg: DICConfig = DICConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        nf = cfg.num_features
        unshuffle = cfg.input_size // 16
        # (B, 3, S, S) -> (B, 3 * (S/16)^2, 16, 16): no parameters, so the released keys and shapes stay as they are
        self.stem = nn.PixelUnshuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.conv_in = nn.Sequential(
            nn.Conv2d(cfg.in_channels * unshuffle**2, 4 * nf, 3, 1, 1), nn.PReLU(num_parameters=1, init=0.2)
        )
        self.feat_in = nn.PixelShuffle(2)  # (B, 4nf, 16, 16) -> (B, nf, 32, 32)
        self.first_block = FeedbackBlock(nf, cfg.num_groups, in_features=nf, bp_scale=cfg.bp_scale)
        self.block = FeedbackBlock(
            nf,
            cfg.num_groups,
            in_features=2 * nf,
            bp_scale=cfg.bp_scale,
            fusion=AttentiveFusion(nf, num_components=5, num_blocks=cfg.num_fusion_blocks),
        )
        self.out = deconv_prelu(nf, nf, kernel=8, stride=4, padding=2)  # 32 -> 128 px
        self.conv_out = nn.Sequential(nn.Conv2d(nf, cfg.out_channels, 3, 1, 1))
        self.HG = FeedbackHourglass(cfg.hg_num_features, cfg.num_keypoints)  # official attribute name
        # Training only: recompute each attentive step in the backward pass instead of keeping its activations
        # (the released configuration needs ~2.5 GB of activations per sample without it).
        self.gradient_checkpointing = False

    def _reconstruct(self, features: Tensor, up: Tensor) -> Tensor:
        return up + self.conv_out(self.out(features))

    def forward(self, lr: Tensor, seed_heatmaps: Tensor | None = None) -> tuple[list[Tensor], list[Tensor]]:
        size = self.cfg.input_size
        if lr.dim() != 4 or lr.shape[1] != self.cfg.in_channels or lr.shape[-2:] != (size, size):
            raise ValueError(f"DIC x{self.cfg.scale} expects (B, {self.cfg.in_channels}, {size}, {size}) input, "
                             f"got {tuple(lr.shape)}")
        up = F.interpolate(lr, scale_factor=self.cfg.scale, mode=self.cfg.residual_mode, align_corners=False)
        x = self.feat_in(self.conv_in(self.stem(lr)))  # (B, nf, 32, 32), computed once
        features = self.first_block(x)
        sr = self._reconstruct(features, up)
        heat, hg_hidden = self.HG(sr)
        srs, heats = [sr], [heat]
        guide = heat if seed_heatmaps is None else seed_heatmaps.to(dtype=heat.dtype)
        step = self._step
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            step = functools.partial(checkpoint, self._step, use_reentrant=False)
        for _ in range(1, self.cfg.num_steps):
            features, sr, heat, hg_hidden = step(x, features, guide, up, hg_hidden)
            srs.append(sr)
            heats.append(heat)
            guide = heat
        return srs, heats

    def _step(
        self, x: Tensor, features: Tensor, guide: Tensor, up: Tensor, hg_hidden: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One attentive step: features, SR image, heatmaps and the landmark branch's state."""
        features = self.block(x, hidden=features, components=merge_to_five(guide))
        sr = self._reconstruct(features, up)
        heat, hg_hidden = self.HG(sr, hg_hidden)
        return features, sr, heat, hg_hidden
