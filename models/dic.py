"""DIC: deep face super-resolution by iterative collaboration of recovery and landmark estimation (Ma et al. 2020).

The network knows nothing of losses, data, files or devices. Its state-dict keys and shapes equal the official
implementation's (``Maclory/Deep-Iterative-Collaboration``) for the released configuration, so official
checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from dicface.configs.model import DICConfig
from dicface.models.blocks import AttentiveFusion, FeedbackBlock, deconv_prelu
from dicface.models.heatmaps import merge_to_five
from dicface.models.hourglass import FeedbackHourglass


class DIC(nn.Module):
    """DIC: recovery and landmark estimation in turn, 16 (or 32, 64) -> 128 px (or a larger ``output_size``).

    Shape:
        lr: (B, 3, S, S) float RGB, S = cfg.input_size, in [0, 1] minus the CelebA mean (see ``models.faces``);
            (B, 3 * F, S, S) for a multi-frame member (F = cfg.frames: the current frame, then earlier ones)
        seed_heatmaps: optional (B, K, M, M) heatmaps (M = cfg.heatmap_size, 32) used in place of step 0's estimate
            to build the attention of the first attentive step (the tracker's landmarks in the video pipeline)
        returns: sr, heatmaps -- lists of num_steps tensors (B, 3, O, O) and (B, K, M, M), same space as lr
            (O = cfg.output_size, 128)
    """

    def __init__(self, cfg: DICConfig = DICConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        nf = cfg.num_features
        unshuffle = 8 // cfg.scale
        # (B, 3, S, S) -> (B, 3 * (8/scale)^2, O/8, O/8): no parameters, so the released keys and shapes stay
        self.stem = nn.PixelUnshuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.conv_in = nn.Sequential(
            nn.Conv2d(cfg.in_channels * cfg.frames * unshuffle**2, 4 * nf, 3, 1, 1),
            nn.PReLU(num_parameters=1, init=0.2),
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
        self.out = deconv_prelu(nf, nf, kernel=8, stride=4, padding=2)  # features (output / 4) -> output px
        self.conv_out = nn.Sequential(nn.Conv2d(nf, cfg.out_channels, 3, 1, 1))
        self.HG = FeedbackHourglass(cfg.hg_num_features, cfg.num_keypoints)  # official attribute name
        # Training only: recompute each attentive step in the backward pass instead of keeping its activations
        # (the released configuration needs ~2.5 GB of activations per sample without it).
        self.gradient_checkpointing = False

    def _reconstruct(self, features: Tensor, up: Tensor) -> Tensor:
        return up + self.conv_out(self.out(features))

    def forward(self, lr: Tensor, seed_heatmaps: Tensor | None = None) -> tuple[list[Tensor], list[Tensor]]:
        size, channels = self.cfg.input_size, self.cfg.in_channels
        if lr.dim() != 4 or lr.shape[1] != channels * self.cfg.frames or lr.shape[-2:] != (size, size):
            raise ValueError(f"DIC x{self.cfg.scale} expects (B, {channels * self.cfg.frames}, {size}, {size}) "
                             f"input, got {tuple(lr.shape)}")
        up = F.interpolate(lr[:, :channels], scale_factor=self.cfg.scale, mode=self.cfg.residual_mode,
                           align_corners=False)  # the current frame's
        x = self.feat_in(self.conv_in(self.stem(lr)))  # (B, nf, O/4, O/4), computed once
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
