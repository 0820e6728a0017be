"""Where a scheduled full-frame search is needed: only where the picture changed.

A full-frame pass is the most expensive part of detection (about 200 ms for a 1280x720 frame at x2 on 2 cores).
Between two scheduled passes (``every`` frames apart) the detector can only find something new where the picture
changed: elsewhere it would see the pixels it saw before. So on a scheduled frame the gate compares each 8x8 block
with the previous scheduled frame's picture near where the camera's motion (phase correlation) puts it, and asks
for searches only around the blocks that match nothing there, and where a track ended since (its face may still
be there, unchanged); the regions around the tracked faces are searched on every frame anyway, so changes there
are left to them. A static camera, or a panning one (new picture only at one edge), then costs a few small
searches instead of a full pass; a busy scene (most blocks changed) gets the full pass as before. Every change is
looked at on the first scheduled frame after it, as without the gate.

Full passes still happen on a stream's first frame, after a scene cut (most blocks change), when the previous
scheduled frame is not the one ``every`` frames back, when the camera motion cannot be measured, on frames under
32 px, and on every ``max_skip``-th scheduled frame (changes too slow to pass the threshold between two scheduled
frames). Decisions depend on frame indices and pictures only, so a part of a split file decides as the whole run
does once its warm-up has passed, and a runtime that decodes ahead as one that does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dicface.configs.video import DetectConfig
from dicface.pipeline.detect.regions import Box, Region, search_region

BLOCK = 8  # side of the blocks compared, frame pixels (compared at half size)
HALF_BLOCK = BLOCK // 2
SEARCH = 1  # half-size pixels searched around the camera motion, each way
MIN_RESPONSE = 0.05  # phase correlation peaks below this: the camera motion is not measurable
FULL_SHARE = 0.25  # changed blocks covering more of the frame than this: one full pass instead


@dataclass(frozen=True)
class GateDecision:
    """``full``: search the whole frame; else ``changed``, the (H / 8, W / 8) bool blocks where the picture changed
    (``ChangeGate.regions`` turns them into search regions once the frame's tracks are known)."""

    full: bool
    changed: np.ndarray | None = None


FULL = GateDecision(True)


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H / 2, W / 2) float32 grey, lightly smoothed: what the gate compares."""
    h, w = image.shape[:2]
    small = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (max(1, w // 2), max(1, h // 2)),
                       interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small.astype(np.float32), (5, 5), 1.0)


def _reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """Each ``factor`` x ``factor`` block's mean (edge pixels that do not fill a block dropped)."""
    h, w = image.shape[:2]
    return cv2.resize(image[: h // factor * factor, : w // factor * factor], (w // factor, h // factor),
                      interpolation=cv2.INTER_AREA)


def camera_motion(before: np.ndarray, now: np.ndarray) -> tuple[int, int] | None:
    """The picture's shift (dx, dy) from ``before`` to ``now`` to the nearest pixel, by phase correlation; None
    when there is no clear peak (no single motion)."""
    window = cv2.createHanningWindow(now.shape[::-1], cv2.CV_32F)
    # copies: OpenCV (5.0) windows phaseCorrelate's inputs in place
    (dx, dy), response = cv2.phaseCorrelate(before.copy(), now.copy(), window)
    return None if response < MIN_RESPONSE else (round(dx), round(dy))


def changed_blocks(before: np.ndarray, now: np.ndarray, threshold: float) -> np.ndarray | None:
    """(h / 4, w / 4) bool: the blocks of ``now`` (8x8 frame pixels) unlike every block of ``before`` near where
    the camera's motion puts them (mean absolute difference above ``threshold``; a search of +-1 px around the
    global motion absorbs sub-pixel misalignment); blocks with no counterpart in ``before`` count as changed.
    None when the camera's motion cannot be measured. Shapes: ``grey`` images, (h, w) float32 at half size."""
    motion = camera_motion(before, now)
    if motion is None:
        return None
    h, w = now.shape
    margin = SEARCH + max(abs(motion[0]), abs(motion[1]))
    padded = cv2.copyMakeBorder(before, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    inside = cv2.copyMakeBorder(np.ones_like(before), margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    best = np.full((h // HALF_BLOCK, w // HALF_BLOCK), np.inf, np.float32)
    for dy in range(motion[1] - SEARCH, motion[1] + SEARCH + 1):
        for dx in range(motion[0] - SEARCH, motion[0] + SEARCH + 1):
            window = np.s_[margin - dy : margin - dy + h, margin - dx : margin - dx + w]  # before at p - (dx, dy)
            cost = _reduce(np.abs(now - padded[window]), HALF_BLOCK)
            best = np.minimum(best, np.where(_reduce(inside[window], HALF_BLOCK) > 0.5, cost, np.inf))
    return best > threshold


def change_regions(changed: np.ndarray, pad: int, width: int, height: int) -> list[Region]:
    """Frame regions around the connected groups of changed blocks, each grown by ``pad`` frame pixels."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
    regions = []
    for x, y, w, h, _ in stats[1:count]:
        x1, y1 = max(0, x * BLOCK - pad), max(0, y * BLOCK - pad)
        x2, y2 = min(width, (x + w) * BLOCK + pad), min(height, (y + h) * BLOCK + pad)
        regions.append((int(x1), int(y1), int(x2), int(y2)))
    return regions


class ChangeGate:
    """One stream's gate. ``decide`` on each scheduled frame (``index`` a multiple of ``cfg.every``) as soon as
    it is decoded: it looks at pictures only, so a runtime that decodes ahead decides as one that does not;
    ``regions`` when the frame's tracks are known. A scene cut needs no reset: most blocks change, so the
    frame after it gets a full pass."""

    def __init__(self, cfg: DetectConfig) -> None:
        self.cfg = cfg
        self._index: int | None = None
        self._picture: np.ndarray | None = None
        self._tracks: dict[int, Box] = {}

    def decide(self, index: int, image: np.ndarray) -> GateDecision:
        """Whether scheduled frame ``index`` needs a full pass. Shape: image (H, W, 3) uint8 RGB."""
        every, picture = self.cfg.every, grey(image)
        before, previous = self._picture, self._index
        self._index, self._picture = index, picture
        forced = (index // every) % self.cfg.max_skip == 0
        tiny = min(picture.shape) < 4 * HALF_BLOCK  # a frame under 32 px: nothing worth narrowing
        if forced or tiny or before is None or previous != index - every or before.shape != picture.shape:
            return FULL
        changed = changed_blocks(before, picture, self.cfg.gate_threshold)
        if changed is None or changed.mean() > FULL_SHARE:
            return FULL
        return GateDecision(False, changed)

    def regions(self, decision: GateDecision, tracks: Sequence[tuple[int, Box]], width: int, height: int
                ) -> list[Region]:
        """The regions to search on a scheduled frame besides the tracked faces' (none after a full pass): the
        changed blocks away from the tracked faces (those are searched anyway), grown by ``gate_pad``, and where
        a track ended since the previous scheduled frame (its face may still be there, unchanged). ``tracks``:
        (id, box) in frame pixels, as the frame's region searches use them."""
        ended = [box for i, box in self._tracks.items() if i not in {t for t, _ in tracks}]
        self._tracks = dict(tracks)
        if decision.full or decision.changed is None:
            return []
        changed = decision.changed.copy()
        for _, box in tracks:
            region = search_region(box, self.cfg.margin, width, height)
            if region is not None:
                x1, y1, x2, y2 = region
                changed[-(-y1 // BLOCK) : y2 // BLOCK, -(-x1 // BLOCK) : x2 // BLOCK] = False
        regions = change_regions(changed, self.cfg.gate_pad, width, height)
        return regions + [r for r in (search_region(b, self.cfg.margin, width, height) for b in ended) if r]
