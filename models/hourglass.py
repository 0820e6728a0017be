"""DIC's landmark branch: a recurrent single hourglass without normalisation.

Attribute names follow the official checkpoints (``pre_conv_block``, ``hg.res4_1``, ``hg_conv_out`` ...), so
``FB_HG_68_CelebA.pth`` and the ``HG.*`` part of the DIC checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ResidualUnit(nn.Module):
    """Bottleneck residual unit: 1x1 (in -> out/2), ReLU, 3x3, 1x1 (-> out); 1x1 skip when in != out.

    There is no activation after the 3x3 conv nor after the addition (as in the released landmark branch).
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.conv_block = nn.Sequential(
            nn.Conv2d(in_ch, mid, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, 1, 1),
            nn.Conv2d(mid, out_ch, 1),
        )
        self.skip_layer = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        residual = self.conv_block(x)
        skip = self.skip_layer(x) if self.skip_layer is not None else x
        return skip + residual


class ConvReLU(nn.Module):
    """1x1 conv + ReLU, kept as ``conv_block`` for the official key names."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_block(x)


class Hourglass(nn.Module):
    """Hourglass of ``depth`` levels; level n owns ``res{n}_1`` (skip), ``res{n}_2`` (down), ``res{n}_3`` (up).

    Shape: (B, C, H, W) -> (B, C, H, W), H and W divisible by 2**depth.
    """

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.depth = depth
        self._register(depth, channels)

    def _register(self, level: int, channels: int) -> None:
        # Registration order (skip, down, inner levels, up) reproduces the official state-dict key order.
        setattr(self, f"res{level}_1", ResidualUnit(channels, channels))
        setattr(self, f"res{level}_2", ResidualUnit(channels, channels))
        if level > 1:
            self._register(level - 1, channels)
        else:
            self.res_center = ResidualUnit(channels, channels)
        setattr(self, f"res{level}_3", ResidualUnit(channels, channels))

    def _level(self, x: Tensor, level: int) -> Tensor:
        skip = getattr(self, f"res{level}_1")(x)
        low = getattr(self, f"res{level}_2")(F.max_pool2d(x, 2, 2))
        low = self._level(low, level - 1) if level > 1 else self.res_center(low)
        low = getattr(self, f"res{level}_3")(low)
        return skip + F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=True)

    def forward(self, x: Tensor) -> Tensor:
        return self._level(x, self.depth)


class FeedbackHourglass(nn.Module):
    """Recurrent landmark estimator on the SR image.

    Shape:
        image: (B, 3, 128, 128) SR image in the normalised space
        hidden: optional (B, F, 32, 32) state of the previous step, F = num_features
        returns: heatmaps (B, K, 32, 32) and the next hidden state (B, F, 32, 32)
    """

    def __init__(self, num_features: int = 256, num_keypoints: int = 68) -> None:
        super().__init__()
        nf = num_features
        self.num_features = nf
        self.pre_conv_block = nn.Sequential(
            nn.Conv2d(3, nf // 4, 7, 2, 3),
            nn.ReLU(inplace=True),
            ResidualUnit(nf // 4, nf // 2),
            nn.MaxPool2d(2, 2),
            ResidualUnit(nf // 2, nf // 2),
            ResidualUnit(nf // 2, nf),
        )
        self.compress_in = nn.Conv2d(2 * nf, 2 * nf, 1)
        self.hg = Hourglass(4, 2 * nf)
        self.hg_conv_out = nn.Sequential(ResidualUnit(nf, nf), ConvReLU(nf, nf), nn.Conv2d(nf, num_keypoints, 1))

    def features(self, image: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The stem's features (B, F, 32, 32) and the hourglass output (B, 2F, 32, 32): its first half makes the
        heatmaps, its second is the next state."""
        stem = self.pre_conv_block(image)
        # At the first step there is no state: the features are paired with themselves.
        state = stem if hidden is None else hidden
        return stem, self.hg(self.compress_in(torch.cat((stem, state), dim=1)))

    def forward(self, image: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _, features = self.features(image, hidden)
        heatmaps = self.hg_conv_out(features[:, : self.num_features])
        return heatmaps, features[:, self.num_features :]
