"""Batched DIC inference over face crops, seeded with the tracker's landmarks.

Crops come sized for one member of the DIC family (16, 32 or 64 px, or a large-face member's 96 or 128 px, chosen by
``pipeline.align``); each member's crops are batched together. A member's SR faces have its output size (128 px, a
large-face member's 192 or 256).

With ``seed="tracker"`` each crop's tracked landmarks (in the 128-px crop frame, mapped to the member's output) are
rendered as Gaussian heatmaps and replace DIC's step-0 estimate for the first attention; crops without landmarks run
unseeded. The landmarks decoded from DIC's final heatmaps are returned in frame
pixels, for the tracker's feedback.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dicface.configs.model import DICConfig, InferenceOptions
from dicface.configs.schema import SEED_MODES, ModelConfig, RunConfig
from dicface.models.faces import (
    HR_SIZE,
    denormalise,
    from_crop_coords,
    normalise_frames,
    rescale_crop_points,
    resize_bicubic,
)
from dicface.models.heatmaps import decode_landmarks, render_heatmaps
from dicface.models.inference import FaceSuperResolver, resolve_steps
from dicface.models.registry import WeightsRecord, family, load_model
from dicface.pipeline.align import route
from dicface.pipeline.types import EnhancedFace, FaceCrop

logger = logging.getLogger(__name__)


_LOADED: OrderedDict[tuple[object, ...], tuple[FaceSuperResolver, WeightsRecord]] = OrderedDict()
LOADED_MAX = 8  # networks kept for reuse in a process (a demo or a benchmark asks for the same ones again)


def load_members(model: ModelConfig, inference: InferenceOptions, upscale: float = 1.0
                 ) -> list[tuple[FaceSuperResolver, WeightsRecord]]:
    """The one weights loader: the members ``model`` names (a file, or the package's family for a frame scaled by
    ``upscale``, or one member of it), each as a resolver and the record of its weights, smallest input first. A
    member is built once per process for the same file (and its modification time), steps, fidelity and inference
    options, and shared after."""
    loaded = []
    for record in family(model.weights, model.scale, upscale=upscale):
        stat = record.file.stat()
        steps = resolve_steps(model.num_steps, record.config.num_steps, inference)
        key = (str(record.file.resolve()), stat.st_mtime_ns, stat.st_size, steps, model.fidelity, inference)
        if key not in _LOADED:
            network, named = load_model(record, steps, model.fidelity)
            _LOADED[key] = (FaceSuperResolver(network, inference), named)
            while len(_LOADED) > LOADED_MAX:
                _LOADED.popitem(last=False)
        _LOADED.move_to_end(key)
        loaded.append(_LOADED[key])
    return loaded


def load_member(cfg: RunConfig) -> tuple[FaceSuperResolver, WeightsRecord]:
    """One member (``sr`` on single faces, ``eval``, the demo's stills): ``model.weights``, or the default member
    of ``model.scale`` (x8 when not given)."""
    scale = cfg.model.scale or (None if cfg.model.weights else 8)
    resolver, record = load_members(replace(cfg.model, scale=scale), cfg.inference)[0]
    logger.info("weights: %s (x%d, %s)", record.name, record.config.scale, record.file)
    return resolver, record


def load_enhancer(cfg: RunConfig) -> tuple[Enhancer, list[WeightsRecord]]:
    """The enhancer of a run configuration (its members as ``load_members`` gives them, seeded as ``enhance.seed``
    says) and the records of its members' weights."""
    loaded = load_members(cfg.model, cfg.inference, cfg.enhance.upscale)
    first = loaded[0][0]
    logger.info("weights: %s on %s (%s, %s, %d steps)", ", ".join(f"{r.name} ({r.config.name})" for _, r in loaded),
                first.device, first.backend, first.precision, first.model.cfg.num_steps)
    enhancer = Enhancer([resolver for resolver, _ in loaded], seed=cfg.enhance.seed)
    return enhancer, [record for _, record in loaded]


class Enhancer:
    """Super-resolves face crops in batches, each with the family member of its input size. Order is kept;
    empty in, empty out."""

    def __init__(self, resolvers: FaceSuperResolver | Sequence[FaceSuperResolver], seed: str = "tracker") -> None:
        if seed not in SEED_MODES:
            raise ValueError(f"seed must be one of {SEED_MODES}, got {seed!r}")
        members = [resolvers] if isinstance(resolvers, FaceSuperResolver) else list(resolvers)
        self.resolvers = {r.model.cfg.input_size: r for r in members}
        if len(self.resolvers) != len(members):
            raise ValueError("two DIC members with the same input size")
        self.seed = seed

    @property
    def input_sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.resolvers))

    @property
    def num_keypoints(self) -> int:
        return next(iter(self.resolvers.values())).model.cfg.num_keypoints

    @property
    def configs(self) -> dict[int, DICConfig]:
        """Each member's configuration (frames, scale, output size), by input size."""
        return {size: r.model.cfg for size, r in self.resolvers.items()}

    def still_faces(self, faces: Sequence[np.ndarray], max_reduction: float) -> tuple[np.ndarray, np.ndarray]:
        """Face images of any size (H, W, 3) uint8 RGB, each through the member that fits it (``align.route``; one
        larger than every member's reach: the largest), unseeded: (N, 128, 128, 3) uint8 SR faces (a large-face
        member's resized to 128) and (N, K, 2) landmarks in their pixels."""
        sizes = self.input_sizes
        routed = [route(min(f.shape[:2]), sizes, max_reduction) or sizes[-1] for f in faces]
        sr = np.zeros((len(faces), HR_SIZE, HR_SIZE, 3), np.uint8)
        landmarks = np.zeros((len(faces), self.num_keypoints, 2), np.float32)
        for size in set(routed):
            group = [i for i, s in enumerate(routed) if s == size]
            out, points = self.resolvers[size].faces([faces[i] for i in group])
            side = out.shape[1]
            sr[group] = out if side == HR_SIZE else [resize_bicubic(face, HR_SIZE) for face in out]
            landmarks[group] = rescale_crop_points(points, side, HR_SIZE)
        return sr, landmarks

    def __call__(self, crops: Sequence[FaceCrop]) -> list[EnhancedFace]:
        """Each crop through the member of its input size, seeded with its tracked landmarks (rescaled from the
        128-px crop frame to the member's output) where ``seed`` says so: SR faces of the member's output size,
        DIC's landmarks in frame pixels."""
        unknown = {c.lr.shape[0] for c in crops} - set(self.resolvers)
        if unknown:
            raise ValueError(f"crops of {sorted(unknown)} px have no DIC member (members: {self.input_sizes})")
        faces: list[EnhancedFace | None] = [None] * len(crops)
        for size, resolver in self.resolvers.items():
            side = resolver.model.cfg.output_size
            member = [i for i, c in enumerate(crops) if c.lr.shape[0] == size]
            seeded = [i for i in member if self.seed == "tracker" and crops[i].seed is not None]
            plain = [i for i in member if i not in set(seeded)]
            for group, seeds in ((seeded, True), (plain, False)):
                if not group:
                    continue
                lr = normalise_frames(np.stack([_frames(crops[i], resolver.model.cfg.frames) for i in group]))
                seed = None
                if seeds:
                    points = rescale_crop_points(np.stack([crops[i].seed for i in group]), HR_SIZE, side)
                    seed = render_heatmaps(points, resolver.model.cfg.heatmap_size)
                out = resolver(lr, seed)
                for i, sr, p in zip(group, denormalise(out.sr), decode_landmarks(out.heatmaps).numpy(), strict=True):
                    c = crops[i]
                    faces[i] = EnhancedFace(c.frame_index, c.track_id, c.box, sr, from_crop_coords(p, c.box, side),
                                            c.seed, c.lr)
        return [face for face in faces if face is not None]


def _frames(crop: FaceCrop, frames: int) -> np.ndarray:
    """A member's input for ``crop``: (S, S, 3) for one frame; (F, S, S, 3), the current crop first, then its
    context (the current crop again where it has less)."""
    if frames == 1:
        return crop.lr
    earlier = [] if crop.context is None else list(crop.context[: frames - 1])
    return np.stack([crop.lr, *earlier, *[crop.lr] * (frames - 1 - len(earlier))])
