"""Temporal fusion of a track's super-resolved faces, in the aligned face frame.

DIC sees one frame at a time, so the detail it invents for a 20-40 px face changes from frame to frame (flicker),
and each frame's crop samples the face at another sub-pixel phase. Here a track's SR face (128-px crop) is averaged
with up to ``frames`` SR faces of the track before it and ``lookahead`` after it (so a frame is output that many
frames late), each carried into its crop once (never re-warped, so nothing blurs frame after frame): bilinearly from
the face enlarged x2 once (bicubic), which measured as a bicubic warp does (``dicface bench quality``, crf 26, x2
and x4: within 0.01 dB and the same flicker; fine detail 1 % less, a bilinear warp 3-4 %) at a sixth of its cost
(fusion 17 -> 10 ms per 720p frame of three faces). The map that carries a face comes from the LR crops DIC was
given: each frame's crop is registered onto the previous one -- scaled by the two crop boxes' sides, shifted by ECC
on Y within the face's landmark box, starting from the landmarks' mean motion -- and the steps are chained (a later
face is carried back by the inverse chain). A small face's tracked landmarks jitter by pixels of the 128-px crop
from frame to frame; the registered shift is within half a pixel (``tests/pipeline/test_fusion.py``). Where
registration is off or fails, the similarity fit of the two crops' landmarks carries the face. Then

    fused = sum_k w_k * carried_k / sum_k w_k,   w_0 = 1,  w_k = weight^|k| * exp(-(d_k / tolerance)^2) per pixel,

with k the face's offset in frames and d_k its local |Y| disagreement with the current one (Gaussian-smoothed), so
where the face changed (mouth, blink, occlusion, a wrong transform) the current frame wins -- and the later faces,
which agree with a change, show it sooner than the earlier ones alone would. Large faces (landmark extent above
``large_extent`` px in the input frame) get the tighter ``large_tolerance``: their SR faces flicker little, and on
talking heads the looser one blurred what moved; and each face carried onto a large one is moved on along the
optical flow from the current face to it (``FlowCarry``, ``large_flow``), so a mouth that opens or an eye that
closes is carried with the face rather than held back by the tolerance. Nothing is carried across a gap in
the track, past a scene cut (the tracker starts new tracks), where the carried face does not cover the pixel, or
from a face that moved or scaled by more than ``max_motion`` of the crop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np

from dicface.configs.video import FusionConfig
from dicface.models.faces import HR_SIZE
from dicface.pipeline.types import EnhancedFace

Y_WEIGHTS = np.array([65.481, 128.553, 24.966], np.float32) / 255.0
# (3, 3): pixel centres of a 2x enlargement (cv2.resize: half-pixel centres) -> the same points in the 128-px crop
_FINE_TO_CROP = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25], [0.0, 0.0, 1.0]])


@dataclass
class _Entry:
    """One face of a track's run of consecutive frames."""

    face: EnhancedFace
    sr: np.ndarray  # (O, O, 3) float32 RGB, as DIC made it (O: the member's output size, 128)
    fine: np.ndarray  # (2O, 2O, 3) float32: ``sr`` enlarged x2 (bicubic), what the face is carried from
    side: float  # the crop box's side, frame pixels
    lr: np.ndarray | None  # (S, S) float32 Y of the crop DIC was given
    to_last: np.ndarray | None  # (3, 3) this crop's 128-px frame -> the run's latest crop's, registered
    done: bool = False  # fused (its result is in ``TemporalFusion._results``)

    @property
    def index(self) -> int:
        return self.face.frame_index

    @cached_property
    def luma_crop(self) -> np.ndarray:
        """(128, 128) uint8 Y of ``sr`` in the 128-px crop frame (``crop_luma``), for the flow of large faces."""
        return crop_luma(self.sr)


def _resampled(factor: float) -> np.ndarray:
    """(3, 3): pixel centres of a crop -> the same points in a crop of the same box ``factor`` times as large."""
    return np.array([[factor, 0.0, factor / 2 - 0.5], [0.0, factor, factor / 2 - 0.5], [0.0, 0.0, 1.0]])


def _lr_to_crop(size: int) -> np.ndarray:
    """(3, 3): pixel centres of an S-px crop -> the same points in the 128-px crop of the same box."""
    return _resampled(HR_SIZE / size)


def register(before: np.ndarray, now: np.ndarray, guess: np.ndarray, seed: np.ndarray) -> np.ndarray | None:
    """Refine the shift of ``guess``, the affine map of crop ``before`` onto crop ``now`` (in their 128-px frames),
    by ECC on the two LR crops' Y within the landmark box of ``seed`` (the current crop's landmarks, 128-px
    frame); its linear part is kept. None where ECC does not converge.

    Shape: before, now (S, S) float32; guess (2, 3); seed (68, 2) -> (3, 3)
    """
    size = now.shape[0]
    a = _lr_to_crop(size)
    g = np.linalg.inv(a) @ np.vstack([guess, [0.0, 0.0, 1.0]]) @ a
    warp = np.linalg.inv(g)[:2].astype(np.float32)  # ECC maps its template (the face in ``now``) into ``before``
    points = (seed + 0.5) * size / HR_SIZE - 0.5
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int), 0, size - 2)
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int) + 1, (x0 + 2, y0 + 2), size)
    offset = np.array([x0, y0], np.float32)
    warp[:, 2] += warp[:, :2] @ offset  # template pixel (u, v) is pixel (u + x0, v + y0) of ``now``
    try:
        _, warp = cv2.findTransformECC(np.ascontiguousarray(now[y0:y1, x0:x1]), before, warp,
                                       cv2.MOTION_TRANSLATION,
                                       (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-5), None, 1)
    except cv2.error:
        return None
    warp[:, 2] -= warp[:, :2] @ offset
    return a @ np.linalg.inv(np.vstack([warp, [0.0, 0.0, 1.0]])) @ np.linalg.inv(a)


def crop_step(before: np.ndarray, before_seed: np.ndarray, before_side: float, now: np.ndarray, now_seed: np.ndarray,
              now_side: float, max_motion: float) -> np.ndarray | None:
    """(3, 3): crop ``before``'s 128-px frame -> crop ``now``'s, for consecutive crops of a track. Scaled by the
    crop boxes' sides (a face does not change size between two frames; landmark-fitted scales jitter), shifted by
    the landmarks' mean motion refined by ECC (``register``). None where ECC failed or ran off (moved the shift by
    more than ``max_motion`` of the crop from where the landmarks went: not trusted).

    Shape: before, now (S, S) float32 Y of the LR crops; before_seed, now_seed (68, 2) in the 128-px crop frame
    """
    k = before_side / now_side
    shift = (now_seed - k * before_seed).mean(axis=0)
    step = register(before, now, np.array([[k, 0.0, shift[0]], [0.0, k, shift[1]]]), now_seed)
    if step is None or np.abs(step[:2, 2] - shift).max() > max_motion * HR_SIZE:
        return None
    return step


def crop_motion(before: np.ndarray, now: np.ndarray) -> np.ndarray | None:
    """The 2x3 similarity transform taking landmarks ``before`` (68, 2) onto ``now`` (68, 2), least squares."""
    m, _ = cv2.estimateAffinePartial2D(before.astype(np.float32), now.astype(np.float32), method=cv2.LMEDS)
    return m


FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST


class FlowCarry:
    """Carries faces onto one current SR face along the optical flow (DIS) from it to each of them, composed with
    the carrying affine map, so each is resampled once. The flow is found between the faces' Y in the 128-px crop
    frame (``crop_luma``: a larger member's output costs no more) and enlarged to the face's size O."""

    def __init__(self, luma: np.ndarray, size: int) -> None:
        """``luma``: the ``crop_luma`` of the (O, O, 3) SR face the others are carried onto; ``size``: its O."""
        self.size = size
        self.luma = luma
        grid = np.arange(size, dtype=np.float32)
        self.grid = np.stack(np.meshgrid(grid, grid), axis=-1)
        self._dis = cv2.DISOpticalFlow_create(FLOW_PRESET)

    def carry(self, fine: np.ndarray, m: np.ndarray, luma: np.ndarray, on_crop: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """A face carried onto the current one: ``fine``, its (2O, 2O, 3) enlargement, by the affine ``m`` (fine
        pixels -> current pixels) and then along the flow from the current face to it, ``luma`` (its
        ``crop_luma``) carried by ``on_crop`` (the same map in the 128-px crop frame, 2x3). Returns the (O, O, 3)
        face and the (O, O) bool mask of the pixels it covers (bilinear samples all inside: fine pixels 0.5 to
        2O - 1.5)."""
        carried = cv2.warpAffine(luma, on_crop, (HR_SIZE, HR_SIZE), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        flow = self._dis.calc(self.luma, carried, None)
        if self.size != HR_SIZE:
            flow = cv2.resize(flow, (self.size, self.size), interpolation=cv2.INTER_LINEAR) * (self.size / HR_SIZE)
        maps = cv2.transform(self.grid + flow, cv2.invertAffineTransform(m).astype(np.float32))
        moved = cv2.remap(fine, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        edge = fine.shape[0] - 1.5
        return moved, cv2.inRange(maps, (0.5, 0.5), (edge, edge)) > 0


def crop_luma(sr: np.ndarray) -> np.ndarray:
    """(O, O, 3) float32 RGB SR face -> (128, 128) uint8 Y in the 128-px crop frame, what flow is found on."""
    luma = cv2.transform(sr, Y_WEIGHTS[None])
    if luma.shape[0] != HR_SIZE:
        luma = cv2.resize(luma, (HR_SIZE, HR_SIZE), interpolation=cv2.INTER_AREA)
    return np.clip(luma + 0.5, 0, 255).astype(np.uint8)


Ready = list[tuple[int, list[EnhancedFace]]]  # frames whose faces are final: (frame index, fused faces), in order


class TemporalFusion:
    """Stateful, per stream: ``push`` each frame's faces (maybe none), in order; a frame comes back ``lookahead``
    frames later, its faces fused with up to ``cfg.frames`` faces of their tracks before and ``lookahead`` after
    it; ``flush`` (the stream's end, a scene cut) returns the rest."""

    def __init__(self, cfg: FusionConfig = FusionConfig()) -> None:
        self.cfg = cfg
        self.lookahead = cfg.delay
        self._runs: dict[int, list[_Entry]] = {}
        self._pending: deque[tuple[int, list[EnhancedFace]]] = deque()
        self._results: dict[tuple[int, int], EnhancedFace] = {}  # (frame index, track id) -> fused face

    def push(self, frame_index: int, faces: Sequence[EnhancedFace]) -> Ready:
        present = {face.track_id for face in faces}
        for track_id in [t for t in self._runs if t not in present]:
            self._end_run(track_id)  # a gap or the track's end: its last faces get no more lookahead
        for face in faces:
            if face.seed is None or self.cfg.weight == 0:
                self._end_run(face.track_id)
                self._results[(frame_index, face.track_id)] = face
                continue
            if face.track_id in self._runs and self._runs[face.track_id][-1].index != frame_index - 1:
                self._end_run(face.track_id)  # frames skipped (a live stream's dropped frames): a new run
            run = self._add(self._runs.setdefault(face.track_id, []), face)
            due = frame_index - self.lookahead
            for entry in run:
                if entry.index <= due and not entry.done:
                    self._fuse(run, entry)
            self._runs[face.track_id] = [e for e in run if e.index >= due - self.cfg.frames]
        self._pending.append((frame_index, list(faces)))
        return self._ready(frame_index - self.lookahead)

    def flush(self) -> Ready:
        for track_id in list(self._runs):
            self._end_run(track_id)
        return self._ready(None)

    def _ready(self, upto: int | None) -> Ready:
        out = []
        while self._pending and (upto is None or self._pending[0][0] <= upto):
            index, faces = self._pending.popleft()
            out.append((index, [self._results.pop((index, face.track_id)) for face in faces]))
        return out

    def _end_run(self, track_id: int) -> None:
        run = self._runs.pop(track_id, [])
        for entry in run:
            if not entry.done:
                self._fuse(run, entry)

    def _add(self, run: list[_Entry], face: EnhancedFace) -> list[_Entry]:
        """``run`` with ``face`` appended and every face's ``to_last`` moved on to it (None where registration is
        off or failed: those are carried by their landmarks); the step from the last crop is ``crop_step``."""
        side = face.box[2] - face.box[0]
        lr = None if face.lr is None else (face.lr.astype(np.float32) @ Y_WEIGHTS)
        step = None
        if run:
            last = run[-1]
            if self.cfg.register and lr is not None and last.lr is not None and last.lr.shape == lr.shape:
                step = crop_step(last.lr, last.face.seed, last.side, lr, face.seed, side, self.cfg.max_motion)
            for entry in run:
                entry.to_last = None if step is None or entry.to_last is None else step @ entry.to_last
        sr = face.sr.astype(np.float32)
        fine = cv2.resize(sr, (2 * sr.shape[1], 2 * sr.shape[0]), interpolation=cv2.INTER_CUBIC)
        run.append(_Entry(face, sr, fine, side, lr, None if lr is None else np.eye(3)))
        return run

    def _is_large(self, entry: _Entry) -> bool:
        """Whether ``entry``'s face spans more than ``large_extent`` px of the input frame (its landmarks)."""
        seed = entry.face.seed
        return float((seed.max(axis=0) - seed.min(axis=0)).max()) * entry.side / HR_SIZE > self.cfg.large_extent

    def _fuse(self, run: list[_Entry], entry: _Entry) -> None:
        """Fuse ``entry``'s SR face with the faces of its ``run`` up to ``frames`` before and ``lookahead`` after it,
        each carried into its crop (maps in the 128-px crop frame, applied in the SR face's own pixels: a larger
        member's output); the (O, O, 3) uint8 result goes to ``_results``."""
        centre = np.float32([HR_SIZE / 2, HR_SIZE / 2])
        current, seed = entry.sr, entry.face.seed
        size = current.shape[1::-1]
        to_sr = _resampled(size[0] / HR_SIZE)  # the 128-px crop frame -> the SR face's pixels
        from_sr = np.linalg.inv(to_sr)
        luma = cv2.transform(current, Y_WEIGHTS[None])
        large = self._is_large(entry)
        tolerance = self.cfg.large_tolerance if large else self.cfg.tolerance
        flow = FlowCarry(entry.luma_crop, size[0]) if large and self.cfg.large_flow else None
        total, weights, ones = current.copy(), np.ones(size[::-1], np.float32), np.ones(size[::-1], np.float32)
        back = None if entry.to_last is None else np.linalg.inv(entry.to_last)
        for other in run:
            age = abs(entry.index - other.index)
            if other is entry or not -self.cfg.frames <= other.index - entry.index <= self.lookahead \
                    or other.sr.shape != current.shape:  # another member's face: nothing carried across a switch
                continue
            if back is not None and other.to_last is not None:
                m = (back @ other.to_last)[:2]
            else:
                m = crop_motion(other.face.seed, seed)
            if m is None:
                continue
            scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
            moved = float(np.linalg.norm(m[:, :2] @ centre + m[:, 2] - centre))
            if moved > self.cfg.max_motion * HR_SIZE or abs(scale - 1) > self.cfg.max_motion:
                continue
            on_crop = m
            if size[0] != HR_SIZE:
                m = (to_sr @ np.vstack([m, [0.0, 0.0, 1.0]]) @ from_sr)[:2]
            if flow is not None:
                carried, covered = flow.carry(other.fine, m @ _FINE_TO_CROP, other.luma_crop, on_crop)
            else:
                carried = cv2.warpAffine(other.fine, m @ _FINE_TO_CROP, size, flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE)
                covered = cv2.warpAffine(ones, m, size, flags=cv2.INTER_LINEAR) > 0.999
            disagreement = cv2.GaussianBlur(cv2.absdiff(cv2.transform(carried, Y_WEIGHTS[None]), luma), (0, 0), 1.5)
            weight = np.exp(cv2.multiply(disagreement, disagreement, scale=-1 / tolerance ** 2))
            weight *= np.float32(self.cfg.weight ** age) * covered
            total = cv2.add(total, cv2.multiply(carried, cv2.merge([weight, weight, weight])))
            weights += weight
        fused = np.clip(total / weights[..., None] + 0.5, 0, 255).astype(np.uint8)
        self._results[(entry.index, entry.face.track_id)] = replace(entry.face, sr=fused)
        entry.done = True
