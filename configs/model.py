"""Settings of the learning side (``models/``): the network's size, how it is trained and how it runs.

Plain frozen dataclasses that import nothing heavy, so a YAML file is read and checked without torch; the modules
that use them (``models.dic``, ``models.train``, ``models.degrade``, ``models.inference``) import them from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from dicface.configs.flags import flag, positive_int
from dicface.models.errors import InputError

OUTPUT_SIZE = 128
SCALES = (8, 4, 2)  # the family's members: 16-, 32- and 64-px inputs
# Back-projection geometry per scale of the up/down projection units: (kernel, stride, padding).
# Scale 8 maps 32 -> 256 px and back, as in the released DIC; smaller scales are cheaper variants.
BACKPROJECTION_GEOMETRY = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}
Degradation = Literal["bicubic", "video"]
DEGRADATIONS: tuple[str, ...] = get_args(Degradation)
MAX_FRAMES = 3
TrainStage = Literal["dic", "hg", "dicgan"]
TrainPrecision = Literal["fp32", "bf16", "fp16"]
InferencePrecision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
InferenceBackend = Literal["auto", "torch", "openvino"]
Discriminator = Literal["lightcnn", "patch", "parts", "input"]
TRAIN_STAGES: tuple[str, ...] = get_args(TrainStage)
TRAIN_PRECISIONS: tuple[str, ...] = get_args(TrainPrecision)
INFERENCE_PRECISIONS: tuple[str, ...] = get_args(InferencePrecision)
INFERENCE_BACKENDS: tuple[str, ...] = get_args(InferenceBackend)


@dataclass(frozen=True)
class DICConfig:
    """Network size. The defaults are the released DIC configuration (21,803,849 parameters).

    ``scale`` is the upscaling factor to the ``output_size`` (128 px): 8 (released, 16-px input), 4 (32 px) or 2 (64
    px). The core works on output / 4 features (32x32): a 16-px input is pixel-shuffled up to them as in the
    released DIC, larger inputs are first pixel-unshuffled by 8 / scale (``conv_in`` then takes 3 * (8 / scale)^2
    channels), so every member of one output size costs about the same per face. The global residual is DIC's
    bilinear upscale at x8 and bicubic at x4/x2 (a sharper base where the input holds more detail; measured +0.7 dB
    early in x2 training, DESIGN section 3).
    ``bp_scale`` is the stride of the back-projection units inside the feedback blocks: 8 (released) projects the
    32-px features to 256 px and back; 2 or 4 are much cheaper variants of the same algorithm.
    """

    num_features: int = 48
    num_groups: int = 6
    num_steps: int = 4
    hg_num_features: int = 256
    num_keypoints: int = 68
    num_fusion_blocks: int = 7
    scale: int = 8
    bp_scale: int = 8
    in_channels: int = 3
    out_channels: int = 3
    # Frames per input: the face now and frames - 1 crops of the same track before it, registered onto its grid
    # (``pipeline.frame_context``), stacked on the channels (B, 3 * frames, S, S), the current frame first. 1 = DIC.
    # At most 3, so a state dict's conv_in width names its member and frame count unambiguously.
    frames: int = 1
    # Side of the output in pixels: 128 (the family: 16-, 32- and 64-px inputs) or a larger multiple of 64 for
    # large faces (192: 48 px at x4, 96 px at x2). The whole network scales with it (features output / 4, heatmaps
    # output / 4): the weights do not depend on it, a member's card names it.
    output_size: int = OUTPUT_SIZE

    def __post_init__(self) -> None:
        if self.output_size < OUTPUT_SIZE or self.output_size % 64:
            raise ValueError(f"output_size must be a multiple of 64 from {OUTPUT_SIZE}, got {self.output_size}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES} (input {[OUTPUT_SIZE // s for s in SCALES]} px), "
                             f"got {self.scale}")
        if self.bp_scale not in BACKPROJECTION_GEOMETRY:
            raise ValueError(f"bp_scale must be one of {sorted(BACKPROJECTION_GEOMETRY)}, got {self.bp_scale}")
        if self.num_steps < 1 or self.num_groups < 1 or self.num_features < 1:
            raise ValueError(f"num_steps, num_groups and num_features must be positive: {self}")
        if self.num_keypoints not in (5, 68):
            raise ValueError(f"num_keypoints must be 68 (iBUG) or 5, got {self.num_keypoints}")
        if not 1 <= self.frames <= MAX_FRAMES:
            raise ValueError(f"frames must be 1 to {MAX_FRAMES}, got {self.frames}")
        if self.hg_num_features % 4:
            raise ValueError(f"hg_num_features must be divisible by 4, got {self.hg_num_features}")

    @property
    def input_size(self) -> int:
        """Side of the LR input in pixels (16, 32 or 64 for the 128-px output; output_size // scale)."""
        return self.output_size // self.scale

    @property
    def name(self) -> str:
        """The member's name in reports: x8, x4, x2; a large-face member's with its output size (x2/192)."""
        return f"x{self.scale}" if self.output_size == OUTPUT_SIZE else f"x{self.scale}/{self.output_size}"

    @property
    def heatmap_size(self) -> int:
        """Side of the landmark heatmaps (32 for the 128-px output)."""
        return self.output_size // 4

    @property
    def residual_mode(self) -> str:
        """Interpolation of the global residual: DIC's bilinear at x8, bicubic for the larger inputs."""
        return "bilinear" if self.scale == 8 else "bicubic"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges are (low, high), drawn uniformly per sample. Blur sigma is in LR pixels, noise in uint8 levels."""

    mode: Degradation = "bicubic"
    clean_fraction: float = 0.3  # video mode: samples left as plain bicubic
    shift: bool = True  # video mode: random whole-HR-pixel shift of the pair (a sub-pixel LR phase)
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.2, 0.6)
    noise_prob: float = 0.5
    noise_sigma: tuple[float, float] = (0.5, 3.0)
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (50, 95)
    h264_prob: float = 0.0  # video mode: share coded as an H.264 intra frame (drawn with JPEG's: at most one codec)
    h264_crf: tuple[int, int] = (18, 32)
    # Multi-frame members (``DICConfig.frames`` > 1): the earlier frames' registration error (LR pixels, normal)
    # and the share of samples with fewer earlier frames than the member takes (a track's first frames: the
    # missing ones are copies of the current crop, as in the video path).
    registration_sigma: float = 0.1
    missing_prob: float = 0.15
    change_prob: float = 0.25  # an earlier frame turned (up to change_degrees) and scaled, not carried back
    change_degrees: float = 4.0
    change_scale: float = 0.04

    def __post_init__(self) -> None:
        if self.mode not in DEGRADATIONS:
            raise ValueError(f"degradation mode must be one of {', '.join(DEGRADATIONS)}, got {self.mode!r}")
        for name in ("clean_fraction", "blur_prob", "noise_prob", "jpeg_prob", "h264_prob", "missing_prob",
                     "change_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"degradation {name} must be in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"degradation jpeg_quality must be 1 <= low <= high <= 100, got {self.jpeg_quality}")
        if self.jpeg_prob + self.h264_prob > 1:
            raise ValueError(f"degradation jpeg_prob + h264_prob must be at most 1 (one codec per sample), "
                             f"got {self.jpeg_prob} + {self.h264_prob}")
        if self.registration_sigma < 0:
            raise ValueError(f"degradation registration_sigma must be >= 0, got {self.registration_sigma}")
        if not 0 <= self.h264_crf[0] <= self.h264_crf[1] <= 51:
            raise ValueError(f"degradation h264_crf must be 0 <= low <= high <= 51, got {self.h264_crf}")


BICUBIC = DegradationConfig()  # DIC's protocol


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are strings so the config round-trips through YAML and the checkpoint."""

    train_images: str
    train_landmarks: str
    out_dir: str
    val_images: str | None = None
    val_landmarks: str | None = None
    val_count: int = 200
    cache_dir: str | None = None
    model: DICConfig = field(default_factory=DICConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)  # how LR inputs are made
    batch_size: int = 8
    iterations: int = 150_000
    lr: float = 1e-4
    milestones: tuple[int, ...] = (10_000, 20_000, 40_000, 80_000)
    gamma: float = 0.5
    heatmap_weight: float = 0.1
    heatmap_foreground: float = 0.0  # extra weight near landmarks: each pixel's squared error counts (1 + this * GT)
    stage: TrainStage = "dic"  # "dic": the whole network; "hg": pre-train the landmark branch on HR crops
    freeze_hg_iterations: int = 0
    init: str | None = None  # whole-network weights to start from (a fresh optimiser; any member's scale)
    hg_init: str | None = None  # a pretrained landmark branch (FB_HG_68_CelebA.pth, an "hg" run's best.pt)
    flip: bool = True
    seed: int = 0
    val_every: int = 1000
    log_every: int = 50
    device: str = "auto"  # auto | cpu | cuda[:N]; a distributed worker uses its own GPU
    precision: TrainPrecision = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 with loss scaling, CUDA only)
    gradient_checkpointing: bool = False  # recompute each attentive step in the backward pass (less memory)
    # stage "dicgan" (the DICGAN recipe's values)
    gan_weight: float = 0.005
    feature_weight: float = 0.1
    feature_init: str | None = None  # LightCNN face-recognition weights for the feature loss
    pixel_init: int = 10_000  # iterations with the pixel and heatmap losses only
    disc_repeat: int = 2
    disc_lr: float = 1e-5
    # lightcnn: DICGAN's LightCNN-9 with the vanilla GAN loss; patch: a spectral-normalised patch discriminator
    # trained here with the hinge loss; parts: the patch discriminator also reading the true landmarks' five
    # component maps; input: it also reads the LR input, enlarged, beside the face (``models.gan``)
    discriminator: Discriminator = "lightcnn"
    disc_warmup: int = 0  # first iterations of the GAN terms in which only the discriminator trains (G held)
    feature_matching_weight: float = 0.0  # L1 between the patch discriminator's features of SR and HR faces
    structure_weight: float = 0.0  # L1 between the init member's frozen landmark hourglass's features of SR and HR
    pixel_lowpass: float = 0.0  # > 0: the final step's L1 on faces blurred by this sigma (HR px), with the GAN terms

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.iterations < 1 or self.lr <= 0:
            raise InputError(f"batch_size, iterations and lr must be positive (got {self.batch_size}, "
                             f"{self.iterations}, {self.lr})")
        if self.stage not in TRAIN_STAGES:
            raise InputError(f"stage must be one of {', '.join(TRAIN_STAGES)}, got {self.stage!r}")
        if self.precision not in TRAIN_PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {self.precision!r}")
        if self.feature_matching_weight > 0 and self.discriminator == "lightcnn":
            raise InputError("feature_matching_weight needs discriminator: patch, parts or input (the features it "
                             "matches)")
        if self.pixel_lowpass < 0 or (self.pixel_lowpass > 0 and self.stage != "dicgan"):
            raise InputError(f"pixel_lowpass must be 0, or positive with stage dicgan, got {self.pixel_lowpass}")
        if self.disc_warmup < 0:
            raise InputError(f"disc_warmup must be 0 or more, got {self.disc_warmup}")
        if self.stage == "dicgan" and self.feature_weight > 0 and not self.feature_init:
            raise InputError("stage dicgan: the feature loss needs feature_init (LightCNN face-recognition weights); "
                             "set feature_weight: 0 to train without it")


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the network. ``device``: auto | cpu | cuda[:N]. ``precision``: auto = bf16 on CUDA (where
    supported) and on CPUs with native bf16 (AVX512_BF16 or AMX), int8 on OpenVINO on other CPUs (where NNCF is
    installed), else fp32 (``models.inference.resolve_precision``). ``backend``: auto = OpenVINO on the CPU where
    installed (fast path, fp32/bf16/int8, no compile), else torch (``models.inference.resolve_backend``)."""

    device: str = field(default="auto", metadata=flag("--device", "auto | cpu | cuda | cuda:N"))
    fast: bool = True
    precision: InferencePrecision = field(default="auto", metadata=flag(
        "--precision", "precision of the fast path; auto: bf16 on GPUs with it and on CPUs that compute bf16 natively "
        "(AVX512_BF16 or AMX: 2-4x faster there, within 0.002 dB); on other CPUs int8 on OpenVINO (1.4x fp32), "
        "else fp32"))
    backend: InferenceBackend = field(default="auto", metadata=flag(
        "--backend", "auto: OpenVINO on the CPU where installed (1.1-1.5x torch), else torch"))
    channels_last: bool = True  # fast path only
    compile: bool = field(default=False, metadata=flag("--compile", "torch.compile the fast path", action="store_true"))
    max_batch: int = field(default=32, metadata=flag("--batch", "faces per forward pass", type=positive_int))

    def __post_init__(self) -> None:
        if self.precision not in INFERENCE_PRECISIONS:
            raise InputError(f"precision must be one of {INFERENCE_PRECISIONS}, got {self.precision!r}")
        if self.backend not in INFERENCE_BACKENDS:
            raise InputError(f"backend must be one of {INFERENCE_BACKENDS}, got {self.backend!r}")
        if self.max_batch < 1:
            raise InputError(f"max_batch must be at least 1, got {self.max_batch}")
