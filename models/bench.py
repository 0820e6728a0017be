"""Model throughput: the plain and the fast inference paths measured in the same run."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import torch

from configs.model import InferenceOptions
from models.dic import DIC
from models.inference import FaceSuperResolver


@dataclass(frozen=True)
class ModelBenchResult:
    device: str
    threads: int
    batch: int
    iters: int
    plain_faces_per_s: float
    fast_faces_per_s: float
    fast_precision: str
    max_abs_diff: float  # between the two paths' SR outputs on the same input

    @property
    def speedup(self) -> float:
        return self.fast_faces_per_s / self.plain_faces_per_s


def _faces_per_s(run: FaceSuperResolver, lr: torch.Tensor, iters: int) -> tuple[float, torch.Tensor]:
    out = run(lr)  # warm-up: allocator, oneDNN primitives, compilation
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    start = time.perf_counter()
    for _ in range(iters):
        out = run(lr)
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    return lr.shape[0] * iters / (time.perf_counter() - start), out.sr


def bench_model(model: DIC, options: InferenceOptions, batch: int = 16, iters: int = 3) -> ModelBenchResult:
    """Time ``iters`` batches of ``batch`` random faces through the plain path, then the fast path, each on its own
    copy of ``model`` (the fast path changes the weights' memory layout)."""
    size = model.cfg.input_size
    lr = torch.rand(batch, 3 * model.cfg.frames, size, size, generator=torch.Generator().manual_seed(0)) - 0.45
    plain = FaceSuperResolver(copy.deepcopy(model), replace(options, fast=False, max_batch=batch))
    plain_fps, plain_sr = _faces_per_s(plain, lr, iters)
    fast = FaceSuperResolver(copy.deepcopy(model), replace(options, fast=True, max_batch=batch))
    fast_fps, fast_sr = _faces_per_s(fast, lr, iters)
    return ModelBenchResult(
        device=str(fast.device),
        threads=torch.get_num_threads(),
        batch=batch,
        iters=iters,
        plain_faces_per_s=plain_fps,
        fast_faces_per_s=fast_fps,
        fast_precision=fast.precision,
        max_abs_diff=float((plain_sr - fast_sr).abs().max()),
    )
