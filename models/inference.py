"""Batched DIC inference: a plain reference path and a fast path with the same numerics.

Fast path: ``torch.inference_mode``, channels-last memory layout (measured 1.8x faster on a 2-core CPU for the
released configuration), bf16/fp16 autocast and an optional ``torch.compile``; on the CPU, OpenVINO's runtime in
place of torch where it is installed (``models.openvino_net``). In fp32 it agrees with the plain path to ~1e-5
(tested to 1e-3).

``precision: auto`` is bf16 on GPUs that have it and on CPUs that compute bf16 natively: AMX tiles (Intel Xeon since
Sapphire Rapids; torch bf16 2.1-3.9x fp32) or AVX512_BF16 (AMD Zen 4 and later, Intel Cooper Lake; on a 2-core
EPYC, x4 batch 16: torch 82 vs 40 faces/s, OpenVINO 105 vs 55). fp32 elsewhere: a CPU without them emulates bf16
(torch 2 faces/s with oneDNN limited to AVX2). CelebA-1000 PSNR-Y of bf16 vs fp32: within 0.002 dB (docs/video.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dicface.configs.model import InferenceOptions
from dicface.models.dic import DIC
from dicface.models.errors import InputError
from dicface.models.faces import denormalise, lr_from_face, normalise_frames, still_frames
from dicface.models.heatmaps import decode_landmarks, render_heatmaps
from dicface.models.openvino_net import OpenVINONetwork, int8_available, openvino_available


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available; an unavailable CUDA device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def cpu_has_amx() -> bool:
    """This CPU has AMX tiles (bf16 matrix units). torch has no public probe for them: its private one, or False."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe is not None and probe())


# environment variables that limit the ISA used
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def cpu_summary() -> str:
    """The CPU as speed figures need it said: model, cores, the widest vector ISA torch's kernels use, AMX, and any
    ISA limit set in the environment, e.g. ``AMD EPYC, 2 cores, AVX512, AVX512_BF16, no AMX``."""
    name = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    caps = [f"{k}={os.environ[k]}" for k in ISA_CAPS if os.environ.get(k)]
    native = cpu_has_bf16()
    bf16 = ("AMX" if cpu_has_amx() else "AVX512_BF16, no AMX") if native else "no native bf16"
    return (f"{name}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}, {bf16}"
            + (f" (limited: {', '.join(caps)})" if caps else ""))


# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) that still admit native bf16 dot products
BF16_ISAS = frozenset({"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                       "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2",
                       "ALL", "DEFAULT"})


def cpu_has_bf16() -> bool:
    """This CPU computes bf16 natively (AMX tiles or AVX512_BF16) and no oneDNN ISA limit in the environment rules it
    out (``ONEDNN_MAX_CPU_ISA=AVX2`` stands in for an older CPU)."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    if limit and limit.upper() not in BF16_ISAS:
        return False
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return cpu_has_amx() or bool(probe is not None and probe())


def resolve_precision(precision: str, device: torch.device, options: InferenceOptions | None = None) -> str:
    """``auto`` -> bf16 on CUDA with bf16 support and on a CPU with native bf16; on another CPU int8 where the fast
    path can run on OpenVINO with NNCF installed (``options``: backend auto or openvino, no compile), else fp32;
    other values as given."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type != "cpu":
        return "fp32"
    if cpu_has_bf16():
        return "bf16"
    openvino_ok = options is not None and options.backend != "torch" and options.fast and not options.compile
    return "int8" if openvino_ok and int8_available() else "fp32"


def resolve_backend(options: InferenceOptions, device: torch.device, precision: str) -> str:
    """``auto`` -> openvino for the CPU fast path in fp32 (or bf16 on a CPU with native bf16; OpenVINO cannot
    emulate it) without torch.compile when OpenVINO is installed, else torch. An explicit ``openvino`` that cannot
    run is an InputError saying why."""
    native = precision in ("fp32", "int8") or (precision == "bf16" and cpu_has_bf16())
    fits = device.type == "cpu" and options.fast and not options.compile and native
    if precision == "int8" and (options.backend == "torch" or not fits):
        raise InputError(f"precision int8 runs on OpenVINO, on the CPU's fast path without compile (here: backend "
                         f"{options.backend}, device {device}, fast {options.fast}, compile {options.compile})")
    if options.backend == "openvino":
        if not fits:
            raise InputError(f"inference.backend openvino runs the fast path on the CPU in fp32 or int8, or in bf16 "
                             f"where the CPU computes it natively, without compile (here: device {device}, precision "
                             f"{precision}, fast {options.fast}, compile {options.compile}); use backend torch or "
                             f"auto")
        if not openvino_available():
            raise InputError("inference.backend openvino needs OpenVINO: pip install openvino")
        return "openvino"
    if options.backend == "auto" and fits and openvino_available():
        return "openvino"
    return "torch"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    """Autocast to bf16/fp16 on ``device`` (training and inference); nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


@dataclass(frozen=True)
class SRBatch:
    """Final outputs for a batch. sr: (B, 3, 128, 128), heatmaps: (B, K, 32, 32), float32 on the CPU,
    in the model's normalised space."""

    sr: Tensor
    heatmaps: Tensor


def run_precision(options: InferenceOptions) -> str:
    """The precision a ``FaceSuperResolver`` with ``options`` runs DIC in (fp32 off the fast path)."""
    return resolve_precision(options.precision, resolve_device(options.device), options) if options.fast else "fp32"


def resolve_steps(num_steps: int | None, trained: int, options: InferenceOptions) -> int:
    """DIC's recurrent steps: ``num_steps`` as given; None (auto): as trained, one fewer where DIC runs in int8
    (a CPU without native bf16, where it is most of a frame's time). Measured with oneDNN limited to AVX2 on a Xeon:
    the 720p bench clip 6.6 -> 8.1 frames/s (DIC 96 -> 70 ms a frame); CelebA-300 through H.264 crf 26 -0.02 dB at
    x4, -0.00 at x2; held-out talking clips x4/x2 +0.01 dB, temporal error 1.00x / 1.00x (docs/video.md)."""
    if num_steps is not None:
        return num_steps
    return max(trained - 1, 1) if run_precision(options) == "int8" else trained


class FaceSuperResolver:
    """Runs a DIC network on batches of faces; order is kept, empty in gives empty out.

    The resolver takes ownership of ``model``: it is moved to the device (and memory layout) in place.
    """

    def __init__(self, model: DIC, options: InferenceOptions = InferenceOptions()) -> None:
        self.options = options
        self.device = resolve_device(options.device)
        self.precision = run_precision(options)
        self.backend = resolve_backend(options, self.device, self.precision)
        self.channels_last = options.fast and options.channels_last and self.backend == "torch"
        self.model = model.eval().to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._openvino = (OpenVINONetwork(self.model, self.precision, torch.get_num_threads())
                          if self.backend == "openvino" else None)
        self._compiled = torch.compile(self.model) if options.fast and options.compile else self.model

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        return autocast(self.device, self.precision if self._openvino is None else "fp32")

    def _to_device(self, batch: Tensor) -> Tensor:
        """float32 on the device; to a GPU through pinned memory, without waiting for the copy."""
        batch = batch.to(torch.float32)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def _forward(self, lr: Tensor, seed: Tensor | None) -> tuple[Tensor, Tensor]:
        """The last step's SR image and heatmaps."""
        if self._openvino is not None:
            return self._openvino(lr, seed)
        sr, heat = self._compiled(lr, seed)
        return sr[-1], heat[-1]

    def __call__(self, lr: Tensor, seed_heatmaps: Tensor | None = None) -> SRBatch:
        """Shape: lr (B, 3 * F, S, S) normalised (S: the model's input size, F its frames), seed_heatmaps optional
        (B, K, 32, 32) -> SRBatch."""
        if lr.shape[0] == 0:
            k = self.model.cfg.num_keypoints
            return SRBatch(torch.empty(0, 3, 128, 128), torch.empty(0, k, 32, 32))
        srs, heats = [], []
        grad_mode = torch.inference_mode() if self.options.fast else torch.no_grad()
        with grad_mode, self._autocast():
            for start in range(0, lr.shape[0], self.options.max_batch):
                chunk = self._to_device(lr[start : start + self.options.max_batch])
                seed = None
                if seed_heatmaps is not None:
                    seed = self._to_device(seed_heatmaps[start : start + self.options.max_batch])
                if self.channels_last:
                    chunk = chunk.contiguous(memory_format=torch.channels_last)
                sr, heat = self._forward(chunk, seed)
                srs.append(sr.float().cpu())
                heats.append(heat.float().cpu())
        return SRBatch(torch.cat(srs), torch.cat(heats))

    def faces(self, faces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Super-resolve face crops of any size.

        Shape: list of (H, W, 3) uint8 RGB -> ((B, O, O, 3) uint8 RGB, (B, K, 2) float32 landmarks in the O-px output;
        O = the member's output size, 128)
        """
        cfg = self.model.cfg
        if not faces:
            return np.zeros((0, cfg.output_size, cfg.output_size, 3), np.uint8), np.zeros((0, cfg.num_keypoints, 2),
                                                                                      np.float32)
        return self.stills([lr_from_face(f, self.model.cfg.input_size) for f in faces])

    def stills(self, lrs: Sequence[np.ndarray], seeds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Super-resolve LR faces of the member's input size, each as a still (given as every frame of a
        multi-frame member), seeded with landmarks or not (``models.evaluate.SuperResolve``).

        Shape: list of (S, S, 3) uint8 RGB, seeds (B, K, 2) in the output's pixels or None -> ((B, O, O, 3) uint8
        RGB, (B, K, 2) float32 landmarks in the O-px output; O = the member's output size, 128)
        """
        cfg = self.model.cfg
        lr = normalise_frames(still_frames(np.stack(lrs), cfg.frames))
        out = self(lr, None if seeds is None else render_heatmaps(seeds, cfg.heatmap_size))
        return denormalise(out.sr), decode_landmarks(out.heatmaps).numpy()
