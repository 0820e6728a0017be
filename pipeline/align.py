"""Face crops for DIC from tracked faces, and the exact inverse mapping used to paste results back.

The crop is the square, axis-aligned box DIC was trained on (``models.faces.square_box``: 1.55x the landmarks'
extent, centred slightly above them), sampled straight from the frame with PIL's antialiased bicubic (edge pixels
repeated where the box leaves the frame) to the input size of the DIC member that fits it (``route``: 16, 32, 64,
96 or 128 px). A size policy skips faces too small to trust, and faces no member can take without losing detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dicface.configs.video import AlignConfig
from dicface.models.faces import CROP_SCALE, HR_SIZE, LR_SIZE, crop_face, square_box, to_crop_coords
from dicface.pipeline.types import FaceCrop, Frame, TrackState

# Without landmarks the crop is estimated from the detector box: a YuNet box is about as wide as the
# landmarks' extent, so the same scale applies (centre kept).
BOX_TO_CROP = CROP_SCALE


def route(crop_px: float, input_sizes: Sequence[int], max_reduction: float, previous: int | None = None,
          hysteresis: float = 0.0) -> int | None:
    """The input size of the member for a square crop of ``crop_px`` frame pixels: the smallest input the crop is
    reduced to by at most ``max_reduction`` (detail kept, the member's output enlarged as little as possible before
    it is pasted); None when even the largest input would reduce it by more. The ``previous`` member of the
    same face is kept while the crop is within ``hysteresis`` (a fraction) past its bounds."""
    sizes = sorted(input_sizes)
    if previous in sizes:
        i = sizes.index(previous)
        low = sizes[i - 1] * max_reduction * (1 - hysteresis) if i else 0.0
        if low < crop_px <= previous * max_reduction * (1 + hysteresis):
            return previous
    return next((size for size in sizes if crop_px <= size * max_reduction), None)


def face_width(track: TrackState) -> float:
    if track.landmarks is not None:
        return float((track.landmarks.max(axis=0) - track.landmarks.min(axis=0)).max())
    return track.bbox[2] - track.bbox[0]


def crop_box(track: TrackState) -> tuple[float, float, float, float]:
    if track.landmarks is not None:
        return square_box(track.landmarks)
    x1, y1, x2, y2 = track.bbox
    half = max(x2 - x1, y2 - y1) * BOX_TO_CROP / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (cx - half, cy - half, cx + half, cy + half)


class Aligner:
    """Tracks of one frame -> DIC crops, each sized for the member that fits it (order kept; skipped faces are
    dropped). ``input_sizes``: the members' input sizes (``Enhancer.input_sizes``); those under ``cfg.min_input``
    are used only when no other is given. ``frames``: frames each member takes, by input size (``Enhancer.frames``;
    1 where not named), for ``pipeline.frame_context``."""

    def __init__(self, cfg: AlignConfig = AlignConfig(), input_sizes: Sequence[int] = (LR_SIZE,),
                 frames: Mapping[int, int] | None = None) -> None:
        self.cfg = cfg
        self.frames = dict(frames or {})
        sizes = tuple(sorted(input_sizes))
        self.input_sizes = tuple(s for s in sizes if s >= cfg.min_input) or sizes

    def __call__(self, frame: Frame, tracks: Sequence[TrackState], previous: Mapping[int, int] | None = None
                 ) -> list[FaceCrop]:
        """``previous``: each track's member input size in the stream's previous frame (``members``), which the
        track keeps within ``cfg.hysteresis`` of its bounds."""
        crops, h = [], self.cfg.hysteresis
        for track in tracks:
            if self.cfg.confirmed_only and not track.confirmed:
                continue
            before = None if previous is None else previous.get(track.track_id)
            low, high = self.cfg.min_face_px, self.cfg.max_face_px
            if before is not None:
                low, high = low * (1 - h), high * (1 + h)
            if not low <= face_width(track) <= high:
                continue
            box = crop_box(track)
            size = route(box[2] - box[0], self.input_sizes, self.cfg.max_reduction, before, h)
            if size is None:
                continue
            seed = None if track.landmarks is None else to_crop_coords(track.landmarks, box, HR_SIZE)
            crops.append(FaceCrop(frame.index, track.track_id, box, crop_face(frame.image, box, size), seed))
        return crops


def members(crops: Sequence[FaceCrop]) -> dict[int, int]:
    """Each cropped track's member input size: ``Aligner``'s ``previous`` for the stream's next frame."""
    return {crop.track_id: crop.lr.shape[0] for crop in crops}
