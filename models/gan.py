"""Adversaries and perceptual losses of the natural-detail stage (``dicgan``) on 128x128 faces.

- **LightCNN-9**, DICGAN's own: max-feature-map layers (a conv or linear layer with twice the outputs, reduced by an
  element-wise max of the two halves), four stride-2 max-pools 128 -> 8 px, 128 x 8 x 8 features, then a
  max-feature linear layer to 256, LeakyReLU and one logit, with the vanilla GAN loss. Its feature loss compares
  the ``features`` of a LightCNN pretrained for face recognition (``feature_init``), which cannot be had offline.
- **A patch discriminator** trained here (``discriminator: patch``): spectral-normalised strided convolutions
  128 -> 16 px, one logit per 16x16 patch (a local judge of texture: skin, hair, eyes), hinge loss. Its
  intermediate features give the **feature-matching loss** (L1 between the discriminator's features of the SR and
  the HR face), the perceptual term that needs no downloaded network: it asks the SR face to show the statistics
  the discriminator looks at, at the HR face's places, where the GAN loss alone only asks for plausible ones.
  Conditioned on the face's parts (``discriminator: parts``), it also reads DIC's five component maps of the true
  landmarks (each eye, nose, mouth, jaw with brows; 32 -> 128 px) beside the image, for real and SR faces alike: a judge
  that knows where an eye should be and what it should look like there, rather than of texture anywhere.
  Conditioned on the input (``discriminator: input``), it reads the LR face enlarged (bicubic) beside the face: a
  judge that can call detail the input rules out fake (teeth in a mouth the input shows dark), where one that sees
  the face alone rewards any plausible detail.
- A **low-pass pixel loss** for the final step (``pixel_lowpass``): L1 between Gaussian-blurred SR and HR faces, so
  the pixel loss holds the frequencies the input carries and stops pulling the ones the codec removed towards
  their average (blur); those are left to the judge, feature matching and the structure loss.
- A **face-structure loss** (``structure_weight``): L1 between the features of a frozen copy of the member's own
  landmark hourglass on the SR and the HR face. Trained to find eyes, brows, nose, mouth and jaw, its features say
  where a face's parts are and how they are shaped: asking the SR face to match them holds the drawn detail to the
  person's own parts, which a texture judge alone does not.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dicface.models.heatmaps import merge_to_five
from dicface.models.hourglass import FeedbackHourglass


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


class PatchDiscriminator(nn.Module):
    """Spectral-normalised patch discriminator. Shape: (B, 3, 128, 128) -> logits (B, 1, 16, 16); ``features``:
    the activations of its four hidden layers (feature matching)."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        shapes = [(in_channels, width, 4, 2), (width, 2 * width, 4, 2), (2 * width, 4 * width, 4, 2),
                  (4 * width, 4 * width, 3, 1)]
        self.hidden = nn.ModuleList(sn(nn.Conv2d(i, o, k, s, 1)) for i, o, k, s in shapes)
        self.out = sn(nn.Conv2d(4 * width, 1, 3, 1, 1))

    def features(self, x: Tensor) -> list[Tensor]:
        found = []
        for conv in self.hidden:
            x = F.leaky_relu(conv(x), 0.2)
            found.append(x)
        return found

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x)[-1])


def part_maps(heatmaps: Tensor, size: int) -> Tensor:
    """The conditioning of ``discriminator: parts``: DIC's five component maps of the true landmarks' heatmaps
    (B, 68, h, h), each normalised to peak 1, resized to (B, 5, size, size)."""
    return F.interpolate(merge_to_five(heatmaps), size=(size, size), mode="bilinear", align_corners=False)


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def feature_matching_loss(disc: PatchDiscriminator, sr: Tensor, hr: Tensor) -> Tensor:
    """Mean over the discriminator's hidden layers of L1(features(SR), features(HR)); HR's are constants."""
    with torch.no_grad():
        targets = disc.features(hr)
    return sum(F.l1_loss(a, b) for a, b in zip(disc.features(sr), targets, strict=True)) / len(targets)


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) (kernel radius 3 sigma, edges reflected)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=image.device)
    kernel = torch.exp(-taps**2 / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(image.dtype)
    channels = image.shape[1]
    out = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def lowpass_l1(sr: Tensor, hr: Tensor, sigma: float) -> Tensor:
    """L1 between the ``sigma``-blurred SR and HR faces (B, 3, H, W): fidelity in the band the input carries."""
    return F.l1_loss(gaussian_blur(sr, sigma), gaussian_blur(hr, sigma))


class StructureLoss(nn.Module):
    """Mean L1 between a frozen landmark hourglass's features of SR and HR faces (B, 3, 128, 128): its stem's
    (B, F, 32, 32) and its hourglass output's (B, 2F, 32, 32), each of one first step (no recurrent state)."""

    def __init__(self, hourglass: FeedbackHourglass) -> None:
        super().__init__()
        self.hg = copy.deepcopy(hourglass).eval().requires_grad_(False)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            targets = self.hg.features(hr)
        return sum(F.l1_loss(a, b) for a, b in zip(self.hg.features(sr), targets, strict=True)) / len(targets)
