"""Settings of the video stages (``pipeline/``): detection, tracking, size policy, fusion, blending,
encoding. Plain frozen dataclasses that import nothing heavy; the stages import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from dicface.configs.flags import flag, positive_int

Detector = Literal["yunet", "insightface", "dlib"]
DETECTORS: tuple[str, ...] = get_args(Detector)


@dataclass(frozen=True)
class DetectConfig:
    """Face detection (``pipeline.detect``): which detector, and when and where faces are searched."""

    detector: Detector = field(default="yunet", metadata=flag(
        "--detector", "yunet (shipped, finds 12-40 px faces), insightface (SCRFD, needs --detector-model) or dlib "
        "HOG (large faces only)"))
    model: str | None = field(default=None, metadata=flag(
        "--detector-model", "the insightface detector ONNX (e.g. SCRFD)"))
    scale: float | None = field(default=None, metadata=flag(
        "--detect-scale", "enlarge frames by this before detection (default 2 for yunet, 1 for the others)"))
    every: int = field(default=10, metadata=flag(
        "--detect-every", "search the whole frame for new faces every N-th frame, in between only around the "
        "tracked faces (1: every frame)", type=positive_int))
    # The change gate (``pipeline.detect.gate``): a scheduled pass searches only where the picture changed.
    gate: bool = field(default=True, metadata=flag(
        "--detect-gate", "a scheduled search looks only where the picture changed since the last one, camera "
        "motion undone; off searches the whole frame"))
    # Detections are kept down to this score, below the detector's threshold for a new face: such a weak one
    # continues a track, and a small one may start a tentative track (``pipeline.track``; YuNet scores small
    # faces low and unevenly, ``pipeline.detect.yunet``). 1: none kept.
    weak_score: float = 0.4
    # A tracked face narrower than region_face_px is searched in its region enlarged to that width (by at most
    # max_zoom; 0: never), on top of the detector's own enlargement: YuNet scores 16-24 px faces low and unevenly
    # at x2. Measured (``dicface bench quality``, crf 26, astronaut faces): +0.01-0.06 dB in every size bin.
    # 48 px and at most 4x: +0.06-0.08 dB more for the 24- and 32-px astronaut heads, held-out ones -0.03 to
    # +0.02, for detection 26 -> 40 ms per frame at 720p with three 18-22-px faces: not taken.
    region_face_px: float = 32.0
    max_zoom: float = 2.0
    # A tracked face at least large_face_px wide is searched in its region without the detector's own enlargement
    # (YuNet's x2, meant for faces under ~30 px): a 300x300 region around a 100-px head took 11.4 ms at x2 and 3.6 at
    # x1, the same face found. None: the detector's enlargement everywhere.
    large_face_px: float | None = 48.0
    margin: float = 1.0  # a tracked face's search region: its box grown by this fraction of its size per side
    duplicate_iou: float = 0.5  # detections of one face from overlapping regions: the best-scoring is kept
    gate_threshold: float = 10.0  # grey levels an 8x8 block's mean must change by, camera motion undone
    gate_pad: int = 32  # frame pixels around a changed area that are searched with it
    # Every max_skip-th scheduled pass searches the whole frame, whatever changed: a change too slow for the gate is
    # looked at within every * max_skip frames (100 by default: 4 s at 25 fps). 5 cost 1 ms a frame more at 720p
    # and 3 ms at 1080p.
    max_skip: int = 10

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        if self.detector == "insightface" and self.model is None:
            raise ValueError("detector insightface needs model: an SCRFD ONNX file (insightface ships none; "
                             "--detector-model)")
        if self.scale is not None and not 0.25 <= self.scale <= 8:
            raise ValueError(f"scale (--detect-scale) must be between 0.25 and 8, got {self.scale}")
        if self.every < 1:
            raise ValueError(f"every (--detect-every) must be at least 1, got {self.every}")
        if not 0 <= self.weak_score <= 1:
            raise ValueError(f"weak_score must be between 0 and 1, got {self.weak_score}")
        if self.region_face_px < 0 or self.max_zoom < 1 or self.margin < 0 or not 0 < self.duplicate_iou <= 1:
            raise ValueError(f"invalid region search: region_face_px {self.region_face_px}, max_zoom "
                             f"{self.max_zoom}, margin {self.margin}, duplicate_iou {self.duplicate_iou}")
        if self.large_face_px is not None and self.large_face_px <= 0:
            raise ValueError(f"large_face_px must be positive (None: off), got {self.large_face_px}")
        if self.gate_threshold <= 0 or self.gate_pad < 0 or self.max_skip < 1:
            raise ValueError(f"invalid detection gate: gate_threshold {self.gate_threshold}, gate_pad "
                             f"{self.gate_pad}, max_skip {self.max_skip}")


@dataclass(frozen=True)
class TrackConfig:
    """The Kalman tracker's association, hysteresis and noise levels (``pipeline.track``)."""

    iou_threshold: float = 0.2  # below this a detection does not continue a track
    min_hits: int = 2  # consecutive matches before a track is confirmed (birth hysteresis)
    max_age: int = 8  # frames without a match before a track is deleted (death hysteresis)
    # A weak detection (below the detector's threshold) narrower than this may start a tentative track, confirmed
    # only by a detection at the full threshold (``pipeline.track``).
    weak_birth_px: float = 24.0
    box_noise: float = 0.05  # detector box std, as a fraction of the face width
    landmark_noise: float = 0.03  # detector landmark std, fraction of the face width
    refine_noise: float = 0.015  # DIC landmark std, fraction of the face width
    motion_noise: float = 0.02  # acceleration std per frame, fraction of the face width

    def __post_init__(self) -> None:
        if not 0 <= self.iou_threshold < 1 or self.min_hits < 1 or self.max_age < 0 or self.weak_birth_px < 0:
            raise ValueError(f"invalid tracking configuration: {self}")


@dataclass(frozen=True)
class AlignConfig:
    """Which faces are enhanced, by size (``pipeline.align``)."""

    min_face_px: float = field(default=8.0, metadata=flag(
        "--min-face", "skip faces narrower than this (landmark extent, px)"))
    # Faces wider than this are left as they are: the largest extent a member takes without reducing its crop by more
    # than ``max_reduction`` (the x2 member for the largest faces, 128-px input: crops up to 166 px, extent 107).
    # Measured (``dicface bench quality`` sizes, crf 26) on held-out 160/192-px heads (extent 80/96; no other photo
    # here is that large) at x1 / x2 / x4: +1.11 / +0.39 / +0.42 and +0.90 / +0.51 / +0.48 dB, temporal error lower in
    # each. At 80 (the 96-px member's reach, chosen on the astronaut's 96/128-px heads: +0.95 / +0.84 / +0.79 and
    # +0.70 / +0.40 / +0.37 dB) 160-px heads were enhanced in half their frames and 192-px ones left alone; before
    # the members for large faces it was 44.
    max_face_px: float = field(default=107.0, metadata=flag(
        "--max-face", "leave faces wider than this (landmark extent, px); a face no DIC member fits without "
        "reducing it more than --max-reduction is left as it is too"))
    # A crop is reduced to a member's input by at most this factor (more loses the detail SR should keep); a crop
    # larger than the largest member's input times this is left as it is. With the 16-px member alone this bound
    # alone gives the old measured break-even (crop ~21 px, landmark extent ~14 px).
    max_reduction: float = field(default=1.3, metadata=flag(
        "--max-reduction", "a face crop goes to the smallest DIC member it is reduced to by at most this factor "
        "(detail kept); raise it to force larger faces through the members there are (e.g. 4 with a single 16-px "
        "model)"))
    # Members with a smaller input than this serve only when no member of at least this input is loaded: the 16-px
    # member, trained on clean bicubic faces, lost to the 32-px one (trained on video degradations) on every crop
    # of 15-22 px measured (12-frame crf-26 clips of CelebA test faces, x4: +0.16/+0.34/+0.49 dB against
    # +0.23/+0.37/+0.50 for 16/20/24-px heads; x2 likewise), the crop enlarged to 32 px instead of reduced to 16.
    min_input: int = 32
    confirmed_only: bool = True  # only tracks past the birth hysteresis are enhanced
    # A track keeps the member (or the size decision) it had in its previous frame until its face passes that
    # boundary by this fraction: a face whose crop hovers at a boundary would switch between members, or between
    # DIC and bicubic, from frame to frame (flicker; fusion carries nothing across a member switch).
    hysteresis: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.hysteresis < 1:
            raise ValueError(f"hysteresis must be in [0, 1), got {self.hysteresis}")
        if not 0 < self.min_face_px <= self.max_face_px:
            raise ValueError(f"need 0 < min_face_px <= max_face_px, got {self.min_face_px}, {self.max_face_px}")
        if self.max_reduction < 1:
            raise ValueError(f"max_reduction must be at least 1, got {self.max_reduction}")
        if self.min_input < 1:
            raise ValueError(f"min_input must be at least 1, got {self.min_input}")


@dataclass(frozen=True)
class FusionConfig:
    """Temporal fusion of a track's recent SR faces (``pipeline.fusion``)."""

    # Measured (``dicface bench quality``, astronaut faces of 20-28 px at x4, H.264 crf 26): see docs/video.md,
    # "Temporal stability". A tolerance of 8 held fusion back on compression noise; 16 lets more through where a
    # real face changes.
    weight: float = field(default=0.9, metadata=flag(
        "--fusion", "temporal fusion: a track's SR face k frames old, carried along its motion, counts W**k against "
        "the current one where they agree (0: frame by frame)"))
    frames: int = 8  # SR faces of a track kept to average
    # Later faces of the track averaged too: each frame is output this many frames later (a live stream's
    # latency grows by as many frames). Measured (x4, crf 26, 20-32-px faces, 24 frames): temporal error against
    # frame-by-frame DIC -33 % -> -38 % (astronaut) and -30 % -> -35 % (CelebA test faces), +0.03-0.06 dB; 2:
    # -36 %, 8: -38 %. A change shows more on its first frame (a 16-level one 59 % instead of 28 %), as the faces
    # after it agree with it.
    lookahead: int = 4
    tolerance: float = 12.0  # Y levels of disagreement at which a face's weight falls to 1/e
    # Faces whose landmark extent in the input frame is above ``large_extent`` px get ``large_tolerance``: their SR
    # faces flicker little, so a disagreement is more likely a real change (a mouth opening, a blink) than invented
    # detail to average away. Measured (``dicface bench quality --motion talking``, held-out heads, crf 26, x2): a
    # 96/192-px talking head lost 0.27/0.79 dB to fusion at 12 and 0.00/0.16 at 6, the same heads panning kept
    # their gain (+0.12/+0.14 dB over no fusion); 64-px heads panning lost 0.09-0.15 dB at 6, so they keep 12.
    large_extent: float = 40.0
    large_tolerance: float = 6.0
    # A large face's carried faces are also moved along the optical flow (DIS, found at the 128-px crop's size)
    # from the current SR face to each of them, so what deformed (a mouth, a blink) is carried with it instead of
    # held back by the tolerance. Measured (``bench quality --motion talking``, held-out, crf 26, 96/128/192-px
    # talking heads): x2 +0.40/+0.31/+0.12 -> +0.59/+0.48/+0.43 dB over bicubic, temporal error 3-10 % lower;
    # the same heads panning -0.00 to -0.04 dB, temporal +0.02-0.05. On faces up to 40 px of extent it cost panning
    # heads 0.03-0.06 dB and 8-23 % temporal error: large faces only. Cost about 1 ms a carried face (256-px
    # member): fusion 32 -> 65 ms a frame on the 1080p clip of two 100-px heads.
    large_flow: bool = True
    # Motion (or scale change) inside the crop since then, fraction of its side; also the limit past which a
    # multi-frame member's earlier crop is not used (``pipeline.frame_context``).
    max_motion: float = 0.15
    # Carry by the LR crops, not the landmarks alone: each frame's crop is registered to the previous one (the
    # boxes' scale, a shift found by ECC within the landmark box) and the steps are chained. Measured (``dicface
    # bench quality``, x4, crf 26, faces 20-32 px): temporal error -8 % (astronaut) and -12 to -17 % (CelebA test
    # faces) against the landmark fit, +0.01-0.07 dB; an affine ECC gained about half of that.
    register: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.weight < 1 or self.frames < 1 or self.lookahead < 0 or self.tolerance <= 0 \
                or self.max_motion <= 0 or self.large_tolerance <= 0 or self.large_extent <= 0:
            raise ValueError(f"invalid fusion configuration: {self}")

    @property
    def delay(self) -> int:
        """Frames each frame is held for the later faces: ``lookahead``, none with fusion off."""
        return self.lookahead if self.weight > 0 else 0


@dataclass(frozen=True)
class BlendConfig:
    """How an SR face is pasted back (``pipeline.blend``)."""

    feather: float = 0.08  # width of the mask's ramp, as a fraction of the box side
    colour_match: bool = False
    colour_sigma: float = 1 / 8  # the frame's frequencies below a Gaussian of this fraction of the side are kept


@dataclass(frozen=True)
class EncodeOptions:
    """The output video's encoder (``pipeline.sink.VideoSink``)."""

    codec: str = field(default="libx264", metadata=flag("--codec", "video encoder"))
    crf: int = field(default=18, metadata=flag("--crf", "x264/x265 quality, lower is better"))
    preset: str = field(default="medium", metadata=flag("--preset", "x264/x265 preset"))
    pix_fmt: str = field(default="auto", metadata=flag(
        "--pix-fmt", "output pixel format; auto keeps the input's (10-bit stays 10-bit, 4:4:4 stays 4:4:4) where "
        "the encoder takes it, else yuv420p"))

    def __post_init__(self) -> None:
        if self.codec in X26X_CODECS:
            if not 0 <= self.crf <= X26X_MAX_CRF:
                raise ValueError(f"crf must be 0 (lossless) to {X26X_MAX_CRF} for {self.codec}, got {self.crf}")
            if self.preset not in X26X_PRESETS:
                raise ValueError(f"preset must be one of {', '.join(X26X_PRESETS)} for {self.codec}, "
                                 f"got {self.preset!r}")


# The encoders the sink sets crf and preset for (``pipeline.sink.VideoSink``); whether the codec and pixel format exist
# in this FFmpeg is checked against it (``pipeline.sink.check_encoder``).
X26X_CODECS = ("libx264", "libx265")
X26X_MAX_CRF = 51
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
