"""DIC training pairs from face photos with 68 landmarks (DESIGN §2), cached once as 128-px crops (or the member's
larger output size).

Each photo is cropped to the square landmark box (``models.faces.square_box``), resized to 128 px with PIL bicubic
(HR), then to 16 px (LR); GT heatmaps are 68 Gaussians at the landmarks (sigma 1, 32x32: HR / 4). Batches are drawn
deterministically from (seed, iteration), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dicface.configs.model import BICUBIC, DegradationConfig
from dicface.models.atomic import atomic_output
from dicface.models.degrade import degrade, degrade_frames
from dicface.models.errors import InputError, InputNotFound
from dicface.models.faces import HR_SIZE, LR_SIZE, crop_face, normalise, normalise_frames, square_box, to_crop_coords
from dicface.models.heatmaps import HEATMAP_STRIDE, render_heatmaps
from dicface.models.imageio import list_images, read_rgb
from dicface.models.progress import BarFactory, no_bars

# Mirror image of each iBUG-68 point under a horizontal flip (jaw, brows, nose base, eyes, mouth swap sides).
FLIP_68 = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


def read_landmarks(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A landmark file: JSON ``{"image file name": [[x, y] * 68], ...}`` in image pixels."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        table = {name: np.asarray(points, np.float32) for name, points in raw.items()}
    except FileNotFoundError as exc:
        raise InputNotFound(f"{path}: landmark file not found") from exc
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a landmark JSON file ({exc})") from exc
    bad = next((n for n, p in table.items() if p.shape != (68, 2)), None)
    if bad is not None:
        raise InputError(f"{path}: {bad}: expected 68 (x, y) points, got shape {table[bad].shape}")
    return table


@dataclass(frozen=True)
class FacePairs:
    """HR crops and their landmarks. hr: (N, H, H, 3) uint8 RGB (H = 128, or a member's output size); landmarks:
    (N, 68, 2) float32, HR pixels."""

    hr: np.ndarray
    landmarks: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_folder(
        cls, image_dir: str | os.PathLike[str], landmarks_file: str | os.PathLike[str], cache_dir: Path | None = None,
        bars: BarFactory = no_bars, hr_size: int = HR_SIZE,
    ) -> FacePairs:
        """Crop every photo that has landmarks to ``hr_size`` px; reuse ``cache_dir``'s copy when the inputs are
        unchanged."""
        table = read_landmarks(landmarks_file)
        paths = [p for p in list_images([image_dir]) if p.name in table]
        if not paths:
            raise InputError(f"{image_dir}: no image has an entry in {landmarks_file}")
        key = hashlib.sha256(
            json.dumps([str(Path(image_dir).resolve()), Path(landmarks_file).read_bytes().hex()[:4096],
                        len(paths), hr_size]).encode()
        ).hexdigest()[:16]
        cache = cache_dir / f"pairs_{key}.npz" if cache_dir else None
        if cache and cache.is_file():
            with np.load(cache) as z:
                return cls(z["hr"], z["landmarks"], tuple(z["names"].tolist()))
        hr = np.zeros((len(paths), hr_size, hr_size, 3), np.uint8)
        points = np.zeros((len(paths), 68, 2), np.float32)
        with bars(total=len(paths), desc="cropping faces", unit="face") as bar:
            for i, path in enumerate(paths):
                box = square_box(table[path.name])
                hr[i] = crop_face(read_rgb(path), box, hr_size)
                points[i] = to_crop_coords(table[path.name], box, hr_size)
                bar.update(1)
        pairs = cls(hr, points, tuple(p.name for p in paths))
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(cache) as tmp:
                np.savez(tmp, hr=hr, landmarks=points, names=np.array(pairs.names))
        return pairs

    def sample(
        self,
        index: int,
        flip: bool,
        lr_size: int = LR_SIZE,
        degradation: DegradationConfig = BICUBIC,
        rng: np.random.Generator | None = None,
        frames: int = 1,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One training triple: (S, S, 3) LR, (H, H, 3) HR uint8, (68, 2) landmarks (flipped if asked).

        The LR input is made as ``degradation`` says (``models.degrade``; bicubic by default), drawing from ``rng``;
        with ``frames`` > 1 it is (F, S, S, 3): the current frame and earlier ones on its grid.
        """
        hr, points = self.hr[index], self.landmarks[index]
        if flip:
            hr = np.ascontiguousarray(hr[:, ::-1])
            points = points[FLIP_68].copy()
            points[:, 0] = hr.shape[1] - 1 - points[:, 0]
        rng = rng or np.random.default_rng(index)
        if frames > 1:
            return degrade_frames(hr, points, lr_size, frames, degradation, rng)
        return degrade(hr, points, lr_size, degradation, rng)

    def batch(
        self,
        seed: int,
        iteration: int,
        size: int,
        flip: bool,
        shard: tuple[int, int] = (0, 1),
        lr_size: int = LR_SIZE,
        degradation: DegradationConfig = BICUBIC,
        frames: int = 1,
    ) -> dict[str, Tensor]:
        """The batch for ``iteration``: a deterministic function of (seed, iteration). ``shard`` (rank, world):
        only every world-th sample from the rank-th, a data-parallel worker's share.

        Returns lr (B, 3 * frames, S, S), hr (B, 3, H, H) normalised; heatmaps (B, 68, H/4, H/4); landmarks
        (B, 68, 2).
        """
        rng = np.random.default_rng([seed, iteration])
        indices = rng.integers(0, len(self), size)
        flips = rng.random(size) < 0.5 if flip else np.zeros(size, bool)
        rank, world = shard
        picks = list(zip(indices, flips, strict=True))[rank::world]
        lrs, hrs, pts = zip(
            *(
                self.sample(int(i), bool(f), lr_size, degradation, np.random.default_rng([seed, iteration, int(k)]),
                            frames)
                for k, (i, f) in zip(range(rank, size, world), picks, strict=True)
            ),
            strict=True,
        )
        landmarks = torch.from_numpy(np.stack(pts))
        hr_side = self.hr.shape[1]
        return {
            "lr": normalise_frames(np.stack(lrs)),
            "hr": normalise(np.stack(hrs)),
            "heatmaps": render_heatmaps(landmarks, hr_side // HEATMAP_STRIDE),
            "landmarks": landmarks,
        }
