"""Earlier frames for the multi-frame DIC members: each crop gets its track's previous crops on its own grid.

A face in compressed video carries codec noise that changes from frame to frame while the face does not, and each
frame samples the face at another sub-pixel phase; a multi-frame member (``DICConfig.frames`` = F > 1) sees the
current crop and the F - 1 crops of its track before it, each carried onto the current crop's pixel grid by the
registration temporal fusion uses (``pipeline.fusion.crop_step``: the crop boxes' scale, an ECC shift within the
landmark box, chained from frame to frame; bicubic). Only frames already seen are used, so no latency is added.
Where an earlier crop is missing -- the track's first frames, a gap in the track, another member's crop size, a
registration that failed or ran off -- the current crop stands in for it, as in training
(``models.degrade.degrade_frames``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from dicface.pipeline.fusion import Y_WEIGHTS, _lr_to_crop, crop_step
from dicface.pipeline.types import FaceCrop


@dataclass
class _Seen:
    index: int  # frame index
    lr: np.ndarray  # (S, S, 3) uint8 RGB, as cropped
    y: np.ndarray  # (S, S) float32 Y of ``lr``
    side: float  # the crop box's side, frame pixels
    seed: np.ndarray  # (68, 2) tracked landmarks in the 128-px crop frame
    to_now: np.ndarray  # (3, 3) this crop's 128-px frame -> the track's latest crop's


class FrameContext:
    """Stateful, per stream: call with each frame's crops, in frame order (a frame without faces too); returns
    them with ``context`` set for the crops of multi-frame members. ``frames``: frames per member input size
    (sizes not named take one frame: nothing is kept for them). ``max_motion``: a registered step further than
    this fraction of the crop from the landmarks' motion has run off (the run's ``fusion.max_motion``)."""

    def __init__(self, frames: Mapping[int, int], max_motion: float = 0.15) -> None:
        self.frames = {size: f for size, f in frames.items() if f > 1}
        self.max_motion = max_motion
        self._runs: dict[int, list[_Seen]] = {}

    def __call__(self, crops: Sequence[FaceCrop]) -> list[FaceCrop]:
        present = {c.track_id for c in crops}
        for track_id in [t for t in self._runs if t not in present]:
            del self._runs[track_id]  # a gap or the track's end
        return [self._with_context(crop) for crop in crops]

    def _with_context(self, crop: FaceCrop) -> FaceCrop:
        frames = self.frames.get(crop.lr.shape[0], 1)
        run = self._runs.pop(crop.track_id, [])
        if frames == 1 or crop.seed is None:
            return crop
        now = _Seen(crop.frame_index, crop.lr, crop.lr.astype(np.float32) @ Y_WEIGHTS, crop.box[2] - crop.box[0],
                    crop.seed, np.eye(3))
        if run and (run[-1].index != crop.frame_index - 1 or run[-1].lr.shape != crop.lr.shape):
            run = []
        if run:
            last = run[-1]
            step = crop_step(last.y, last.seed, last.side, now.y, now.seed, now.side, self.max_motion)
            if step is None:
                run = []
            for seen in run:
                seen.to_now = step @ seen.to_now
        self._runs[crop.track_id] = [*run, now][-frames:]
        size = crop.lr.shape[0]
        a = _lr_to_crop(size)
        earlier = [
            cv2.warpAffine(seen.lr, (np.linalg.inv(a) @ seen.to_now @ a)[:2], (size, size), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
            for seen in reversed(run[-(frames - 1):])
        ]
        earlier += [crop.lr] * (frames - 1 - len(earlier))
        return replace(crop, context=np.stack(earlier))

