"""Batched DIC inference over face crops, seeded with the tracker's landmarks.

With ``seed="tracker"`` each crop's tracked landmarks (mapped into the 128-px crop frame) are rendered as
Gaussian heatmaps and replace DIC's step-0 estimate for the first attention; crops without landmarks run
unseeded. The landmarks decoded from DIC's final heatmaps are returned in frame
pixels, for the tracker's feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from configs.schema import RunConfig
from models.faces import HR_SIZE, denormalise, from_crop_coords, normalise
from models.heatmaps import decode_landmarks, render_heatmaps
from models.inference import FaceSuperResolver
from models.registry import WeightsRecord, load_model
from pipeline.align import FaceCrop

SEED_MODES = ("tracker", "none")


@dataclass(frozen=True)
class EnhancedFace:
    """sr: (128, 128, 3) uint8 RGB covering ``box``; landmarks: (68, 2) float32 decoded by DIC, frame pixels."""

    frame_index: int
    track_id: int
    box: tuple[float, float, float, float]
    sr: np.ndarray
    landmarks: np.ndarray


def load_enhancer(cfg: RunConfig, seed: str = "tracker") -> tuple[Enhancer, WeightsRecord]:
    """The enhancer for a run configuration (weights, steps, device, precision, batch) and its weights' record."""
    model, record = load_model(cfg.model.weights, cfg.model.num_steps)
    return Enhancer(FaceSuperResolver(model, cfg.inference), seed=seed), record


class Enhancer:
    """Super-resolves face crops in batches. Order is kept; empty in, empty out."""

    def __init__(self, resolver: FaceSuperResolver, seed: str = "tracker") -> None:
        if seed not in SEED_MODES:
            raise ValueError(f"seed must be one of {SEED_MODES}, got {seed!r}")
        self.resolver = resolver
        self.seed = seed

    def __call__(self, crops: Sequence[FaceCrop]) -> list[EnhancedFace]:
        if not crops:
            return []
        lr = normalise(np.stack([c.lr for c in crops]))
        seeded = [i for i, c in enumerate(crops) if self.seed == "tracker" and c.seed is not None]
        plain = [i for i in range(len(crops)) if i not in set(seeded)]
        srs = torch.empty(len(crops), 3, HR_SIZE, HR_SIZE)
        heats = torch.empty(len(crops), self.resolver.model.cfg.num_keypoints, 32, 32)
        for group, seeds in ((seeded, True), (plain, False)):
            if group:
                seed = render_heatmaps(np.stack([crops[i].seed for i in group])) if seeds else None
                out = self.resolver(lr[group], seed)
                srs[group], heats[group] = out.sr, out.heatmaps
        points = decode_landmarks(heats).numpy()
        return [
            EnhancedFace(c.frame_index, c.track_id, c.box, sr, from_crop_coords(p, c.box, HR_SIZE))
            for c, sr, p in zip(crops, denormalise(srs), points, strict=True)
        ]
