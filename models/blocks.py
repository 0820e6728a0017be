"""Building blocks of DIC's recovery branch: the feedback block and the attentive fusion block.

Attribute names (``compress_in``, ``upBlocks``, ``uptranBlocks`` ...) and the ``nn.Sequential`` index layout follow the
official checkpoints, so that their state dicts load with ``strict=True``: a conv followed by its activation is a
``Sequential(conv, act)`` whose parameters are ``.0.*`` (conv) and ``.1.weight`` (PReLU).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dicface.configs.model import BACKPROJECTION_GEOMETRY


def conv_prelu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int | None = None) -> nn.Sequential:
    """Conv2d (with bias) + PReLU(1 parameter, init 0.2); 'same' padding unless given."""
    pad = (kernel - 1) // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, pad), nn.PReLU(num_parameters=1, init=0.2))


def deconv_prelu(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    """ConvTranspose2d (with bias) + PReLU(1 parameter, init 0.2)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding), nn.PReLU(num_parameters=1, init=0.2)
    )


class GroupedResBlock(nn.Module):
    """x + conv3x3(lrelu(conv3x3(x))), both convs grouped; keys ``res.0.*`` and ``res.2.*``."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, groups=groups),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, groups=groups),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res(x)


class AttentiveFusion(nn.Module):
    """Attentive fusion of facial components (the paper's "attentive fusion module").

    The features are expanded into one 48-channel group per facial component, refined by grouped residual blocks,
    weighted by a per-pixel softmax over the component maps and summed.

    Shape:
        features: (B, C, H, W)
        components: (B, K, H, W) merged landmark maps, K = num_components (5)
        returns: (B, C, H, W)
    """

    def __init__(self, num_features: int, num_components: int = 5, num_blocks: int = 7) -> None:
        super().__init__()
        self.num_components = num_components
        width = num_features * num_components
        self.conv_in = nn.Sequential(nn.Conv2d(num_features, width, 1), nn.LeakyReLU(0.2, inplace=True))
        self.resnet = nn.Sequential(*[GroupedResBlock(width, num_components) for _ in range(num_blocks)])

    def forward(self, features: Tensor, components: Tensor) -> Tensor:
        if components.shape[1] != self.num_components:
            raise ValueError(f"expected {self.num_components} component maps, got {components.shape[1]}")
        b, _, h, w = features.shape
        expanded = self.resnet(self.conv_in(features)).view(b, self.num_components, -1, h, w)
        attention = torch.softmax(components, dim=1).unsqueeze(2)  # (B, K, 1, H, W)
        return (expanded * attention).sum(dim=1)


class FeedbackBlock(nn.Module):
    """SRFBN-style feedback block: dense up/down back-projection groups at the LR feature size.

    ``first_block`` takes the LR features alone (``in_features = num_features``); ``block`` takes the LR features
    concatenated with the previous step's output (``in_features = 2 * num_features``) and an attention map for its
    ``fusion_block``.

    Shape:
        x: (B, in_features - hidden channels, h, w) LR features; hidden: optional (B, C, h, w)
        components: optional (B, 5, h, w) merged landmark maps (required when built with fusion)
        returns: (B, C, h, w), C = num_features; also the next step's hidden state
    """

    def __init__(
        self,
        num_features: int,
        num_groups: int,
        in_features: int,
        bp_scale: int = 8,
        fusion: AttentiveFusion | None = None,
    ) -> None:
        super().__init__()
        if bp_scale not in BACKPROJECTION_GEOMETRY:
            raise ValueError(f"bp_scale must be one of {sorted(BACKPROJECTION_GEOMETRY)}, got {bp_scale}")
        kernel, stride, padding = BACKPROJECTION_GEOMETRY[bp_scale]
        nf = num_features
        self.num_groups = num_groups
        self.compress_in = conv_prelu(in_features, nf, 1)
        self.upBlocks = nn.ModuleList(deconv_prelu(nf, nf, kernel, stride, padding) for _ in range(num_groups))
        self.downBlocks = nn.ModuleList(conv_prelu(nf, nf, kernel, stride, padding) for _ in range(num_groups))
        self.uptranBlocks = nn.ModuleList(conv_prelu(nf * (i + 1), nf, 1) for i in range(1, num_groups))
        self.downtranBlocks = nn.ModuleList(conv_prelu(nf * (i + 1), nf, 1) for i in range(1, num_groups))
        self.compress_out = conv_prelu(num_groups * nf, nf, 1)
        self.fusion_block = fusion

    def forward(self, x: Tensor, hidden: Tensor | None = None, components: Tensor | None = None) -> Tensor:
        if hidden is not None:
            x = torch.cat((x, hidden), dim=1)
        x = self.compress_in(x)
        if self.fusion_block is not None:
            if components is None:
                raise ValueError("this feedback block fuses landmark maps: pass components")
            x = self.fusion_block(x, components)
        lr_features = [x]
        hr_features: list[Tensor] = []
        for g in range(self.num_groups):
            lr = torch.cat(lr_features, dim=1)
            if g > 0:
                lr = self.uptranBlocks[g - 1](lr)
            hr_features.append(self.upBlocks[g](lr))
            hr = torch.cat(hr_features, dim=1)
            if g > 0:
                hr = self.downtranBlocks[g - 1](hr)
            lr_features.append(self.downBlocks[g](hr))
        return self.compress_out(torch.cat(lr_features[1:], dim=1))
