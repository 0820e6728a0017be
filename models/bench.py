"""Model throughput: the plain path, torch's fast path and the configured backend, measured in the same run."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import torch

from dicface.configs.model import InferenceOptions
from dicface.models.dic import DIC
from dicface.models.inference import FaceSuperResolver


@dataclass(frozen=True)
class PathSpeed:
    """One inference path: what it is, faces/s, and its largest SR difference from the plain path on the same input
    (normalised units; 1/255 is one grey level)."""

    label: str
    faces_per_s: float
    max_abs_diff: float


@dataclass(frozen=True)
class ModelBenchResult:
    device: str
    threads: int
    batch: int
    iters: int
    paths: tuple[PathSpeed, ...]  # plain first, the configured fast path last

    @property
    def speedup(self) -> float:
        """The configured path's faces/s over the plain path's."""
        return self.paths[-1].faces_per_s / self.paths[0].faces_per_s


def _faces_per_s(run: FaceSuperResolver, lr: torch.Tensor, iters: int) -> tuple[float, torch.Tensor]:
    out = run(lr)  # warm-up: allocator, oneDNN primitives, compilation, OpenVINO conversion
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    start = time.perf_counter()
    for _ in range(iters):
        out = run(lr)
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    return lr.shape[0] * iters / (time.perf_counter() - start), out.sr


def path_label(run: FaceSuperResolver) -> str:
    """E.g. ``plain (torch, no_grad, fp32)``, ``fast (openvino, bf16)``."""
    if not run.options.fast:
        return "plain (torch, no_grad, fp32)"
    extras = [x for x, on in (("channels-last", run.channels_last), ("compiled", run.options.compile)) if on]
    return f"fast ({', '.join([run.backend, run.precision, *extras])})"


def bench_model(model: DIC, options: InferenceOptions, batch: int = 16, iters: int = 3) -> ModelBenchResult:
    """Time ``iters`` batches of ``batch`` random faces through the plain path, torch's fast path when the
    configured backend is another, then the configured fast path, each on its own copy of ``model`` (the fast
    path changes the weights' memory layout)."""
    size = model.cfg.input_size
    lr = torch.rand(batch, 3 * model.cfg.frames, size, size, generator=torch.Generator().manual_seed(0)) - 0.45
    chosen = FaceSuperResolver(copy.deepcopy(model), replace(options, fast=True, max_batch=batch))
    runs = [FaceSuperResolver(copy.deepcopy(model), replace(options, fast=False, max_batch=batch))]
    if chosen.backend != "torch":
        runs.append(FaceSuperResolver(copy.deepcopy(model), replace(options, fast=True, max_batch=batch,
                                                                    backend="torch")))
    runs.append(chosen)
    paths, reference = [], None
    for run in runs:
        speed, sr = _faces_per_s(run, lr, iters)
        reference = sr if reference is None else reference
        paths.append(PathSpeed(path_label(run), speed, float((sr - reference).abs().max())))
    return ModelBenchResult(device=str(chosen.device), threads=torch.get_num_threads(), batch=batch, iters=iters,
                            paths=tuple(paths))


def model_lines(result: ModelBenchResult, label: str, input_size: int, output_size: int, parameters: int,
                cpu: str) -> list[str]:
    """``dicface bench model``'s lines for one network: what it is, where it ran, each path's faces/s, its speed
    over the plain path's and its largest SR difference from it."""
    width = max(len(p.label) for p in result.paths)
    lines = [f"model: {label}, {input_size} -> {output_size} px, {parameters:,} parameters",
             f"device {result.device} ({cpu}), threads {result.threads}, batch {result.batch}, {result.iters} timed "
             f"batches per path"]
    for path in result.paths:
        ratio = path.faces_per_s / result.paths[0].faces_per_s
        lines.append(f"{path.label:<{width}} {path.faces_per_s:8.2f} faces/s  {ratio:5.2f}x  max |SR - plain|: "
                     f"{path.max_abs_diff:.2e}")
    return lines
