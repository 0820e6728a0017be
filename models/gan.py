"""DICGAN's adversary and perceptual loss network: LightCNN-9 on 128x128 faces.

Architecture (as in the DICGAN recipe): max-feature-map layers (a conv or linear layer with twice the outputs,
reduced by an element-wise max of the two halves), four stride-2 max-pools 128 -> 8 px, 128 x 8 x 8 features,
then a max-feature linear layer to 256, LeakyReLU and one logit. The feature loss compares the ``features`` of a
LightCNN pretrained for face recognition (``feature_init``); the discriminator is a second LightCNN trained here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaxFeature(nn.Module):
    """A conv (or linear) layer with 2x outputs followed by the element-wise max of its two halves."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int = 1,
                 linear: bool = False) -> None:
        super().__init__()
        self.filter = nn.Linear(in_ch, 2 * out_ch) if linear else nn.Conv2d(in_ch, 2 * out_ch, kernel, stride, padding)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.filter(x).chunk(2, dim=1)
        return torch.maximum(a, b)


class LightCNN(nn.Module):
    """LightCNN-9 discriminator. Shape: (B, C, 128, 128) -> logits (B, 1); ``features``: -> (B, 128, 8, 8)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(2, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            MaxFeature(in_channels, 48, 5, 1, 2), pool(),
            MaxFeature(48, 48, 1, 1, 0), MaxFeature(48, 96, 3, 1, 1), pool(),
            MaxFeature(96, 96, 1, 1, 0), MaxFeature(96, 192, 3, 1, 1), pool(),
            MaxFeature(192, 192, 1, 1, 0), MaxFeature(192, 128, 3, 1, 1),
            MaxFeature(128, 128, 1, 1, 0), MaxFeature(128, 128, 3, 1, 1), pool(),
        )
        self.classifier = nn.Sequential(
            MaxFeature(8 * 8 * 128, 256, linear=True), nn.LeakyReLU(0.2, inplace=True), nn.Linear(256, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (128, 128):
            raise ValueError(f"LightCNN expects 128x128 inputs, got {tuple(x.shape)}")
        return self.classifier(self.features(x).flatten(1))


def generator_gan_loss(fake_logits: Tensor) -> Tensor:
    """Vanilla GAN loss of the generator: its outputs should be classified real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Vanilla GAN loss of the discriminator: HR faces real, SR faces fake (the sum of the two terms)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


class FeatureLoss(nn.Module):
    """L1 distance between the frozen LightCNN features of SR and HR faces (B, 3, 128, 128)."""

    def __init__(self, network: LightCNN) -> None:
        super().__init__()
        self.features = network.features.eval().requires_grad_(False)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return F.l1_loss(self.features(sr), self.features(hr))
