"""``dicface bench``: the model, the pipeline's throughput and the video path's quality, each measured in one run."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from dicface.configs.schema import (
    RunConfig,
)
from dicface.models.errors import InputError
from dicface.pipeline.cli.common import run_config, run_mode


def cmd_bench(args: argparse.Namespace) -> int:
    return {"pipeline": _bench_pipeline, "quality": _bench_quality, "model": _bench_model}[args.target](args)


def _runner_factory(args: argparse.Namespace, cfg: RunConfig):  # noqa: ANN202 -- pipeline.bench.MakeRunner
    """Runners from the user's flags, with SR on or off, a seed mode and other flags overridden by keyword; the
    model is loaded once."""
    from dicface.pipeline.enhance import Enhancer, load_enhancer
    from dicface.pipeline.runtime.build import local_runner

    loaded = None

    def make(sr: bool, seed: str, upscale: float | None = None, **flags: object):  # noqa: ANN202
        nonlocal loaded
        if sr and loaded is None:
            loaded, _ = load_enhancer(cfg)
        given = argparse.Namespace(**{**vars(args), "upscale": upscale or args.upscale, "sr": "dic" if sr else "none",
                                      **flags})
        enhancer = Enhancer(list(loaded.resolvers.values()), seed=seed) if sr else None
        return local_runner(run_config(given), run_mode(given), enhancer)

    return make


def _bench_quality(args: argparse.Namespace) -> int:
    from dicface.pipeline.bench import QUALITY_FACES, SizeRow, bench_quality, bench_sizes
    from dicface.pipeline.examples import astronaut_faces, folder_faces, heldout_faces

    scale = int(args.upscale)
    if scale != args.upscale or not 2 <= scale <= 8:
        raise InputError(f"bench quality needs a whole --upscale between 2 and 8, got {args.upscale}")
    make = _runner_factory(args, run_config(args))
    named = {"astronaut": astronaut_faces, "heldout": heldout_faces}
    sources = named[args.faces]() if args.faces in named else folder_faces(Path(args.faces))
    rows = bench_sizes(make, sources, frames=args.frames, crf=args.input_crf)
    print(f"gain over bicubic per face size: {args.faces} faces, H.264 crf {args.input_crf} input, {args.frames} "
          f"frames, against a xK render of the same scene; face regions only; default flags")
    print(f"{'face px':>7} {'xK':>3} {'bicubic':>8} {'dicface':>8} {'gain dB':>8} {'SSIM +':>7} "
          f"{'temporal b/d':>13} {'detail b/d':>11} {'GMSD b/d':>11} {'identity b/d':>13}  members")
    for row in rows:
        if not isinstance(row, SizeRow):
            print(f"{row[0]:>7} {row[1]:>3}   (no source photo is sharp enough for a x{row[1]} truth)")
            continue
        members = ", ".join(f"{k}: {v}" for k, v in sorted(row.by_member.items())) or "none"
        b, d = row.bicubic, row.dicface
        print(f"{row.width:>7} {row.scale:>3} {b.psnr:8.2f} {d.psnr:8.2f} {row.gain:+8.2f} {d.ssim - b.ssim:+7.4f} "
              f"{b.temporal:6.2f}/{d.temporal:6.2f} {b.detail:5.2f}/{d.detail:5.2f} {b.gmsd:5.3f}/{d.gmsd:5.3f} "
              f"{b.identity:6.3f}/{d.identity:6.3f}  {members}")
    sharp = [f for f in sources if f.head.shape[1] >= max(QUALITY_FACES) * scale] or sources
    rows = bench_quality(make, args.frames, scale, args.input_crf, sharp)
    print(f"\n{args.faces} faces {'/'.join(map(str, QUALITY_FACES))} px wide, H.264 crf {args.input_crf}, "
          f"{args.frames} frames, x{scale}, against a x{scale} render of the same scene; face regions only.\n"
          f"temporal: |output change - true change| between frames; warp: warping error along the input's flow "
          f"(no truth; bicubic {rows[0].temporal.mean('warp'):.3f}); detail: fine detail against the truth's (1: as "
          f"much); GMSD: lower is closer; identity: dlib face-descriptor distance to the truth (lower: same person)")
    print(f"{'method':<24} {'PSNR-Y':>7} {'SSIM-Y':>7} {'temporal':>9} {'warp':>7} {'appear.':>7} {'detail':>7} "
          f"{'GMSD':>6} {'identity':>8} faces")
    for row in rows:
        score = row.score
        print(f"{row.label:<24} {score.psnr:7.2f} {score.ssim:7.4f} {score.temporal:9.3f} "
              f"{row.temporal.mean('warp') or 0:7.3f} {row.temporal.mean('appearance') or 0:7.3f} "
              f"{score.detail:7.2f} {score.gmsd:6.3f} {score.identity:8.3f} {row.faces_enhanced}")
    return 0


def _bench_pipeline(args: argparse.Namespace) -> int:
    from dicface.pipeline.bench import BENCH_FACES, bench_pipeline

    if args.input is not None and not args.input.is_file():
        raise InputError(f"{args.input}: no such video file")
    from dicface.models.inference import cpu_summary, resolve_backend, resolve_device, resolve_precision

    cfg = run_config(args)
    device = resolve_device(cfg.inference.device)
    precision = resolve_precision(cfg.inference.precision, device)
    backend = resolve_backend(cfg.inference, device, precision)
    benches = bench_pipeline(args.input, _runner_factory(args, cfg), cfg.encode, args.frames)
    for bench in benches:
        rows = bench.rows
        name = args.input.name if args.input else (f"generated {bench.size[0]}x{bench.size[1]} clip, 3 faces of "
                                                   f"{min(BENCH_FACES)}-{max(BENCH_FACES)} px")
        print(f"{name}: {rows[0].report.frames_in} frames, full-frame detection every {cfg.detect.every} frames, "
              f"{cfg.encode.codec} {cfg.encode.preset}; {cpu_summary()}, DIC on {backend} in {precision}")
        for row in rows:
            print(f"{row.label:<20} {row.fps:7.2f} frames/s  {row.fps / rows[0].fps:5.2f}x decode+encode  "
                  f"faces enhanced {row.report.faces_enhanced}")
        for row in rows[1:]:
            print(f"{row.label}, ms/frame: " + ", ".join(
                f"{k} {v:.1f}" for k, v in row.report.ms_per_frame().items() if v))
        if bench.dic is not None:
            d = bench.dic
            print(f"DIC in the pipeline {d.pipeline_faces_per_s:.1f} faces/s at {d.batch:.1f} faces per call; "
                  f"alone at that batch {d.alone_faces_per_s:.1f} faces/s: {d.ratio:.2f}x\n")
    if cfg.runtime.runtime == "ray":
        _bench_runtime(args, cfg)
    return 0


def _bench_runtime(args: argparse.Namespace, cfg: RunConfig) -> None:
    """In-process vs Ray, and a job on Ray with 1 vs 2 workers per pool (``bench pipeline --runtime ray``)."""
    from dicface.pipeline.bench import bench_runtime
    from dicface.pipeline.enhance import load_enhancer
    from dicface.pipeline.runtime.build import local_runner, ray_runner

    cpus, streams, mode = cfg.runtime.cpus_per_actor, cfg.runtime.streams, run_mode(args)

    def make_ray(workers: int):  # noqa: ANN202 -- RayRunner
        runtime = replace(cfg.runtime, workers=workers, cpus_per_actor=cpus / workers)  # the same CPUs, shared
        return ray_runner(replace(cfg, runtime=runtime), mode)

    rows = bench_runtime(lambda: local_runner(cfg, mode, load_enhancer(cfg)[0]), make_ray, cfg.encode,
                         frames=args.frames, streams=streams)
    print(f"runtime: generated 640x360 clips of {args.frames} frames, 3 faces of 18-22 px")
    for row in rows:
        cpu = "" if row.dic_ms is None else (f"  DIC busy {row.dic_busy_percent:.0f}%, per frame: DIC {row.dic_ms:.0f} "
                                             f"ms, the rest {row.other_ms:.0f} ms")
        print(f"{row.label:<26} {row.fps:7.2f} frames/s ({row.frames} frames){cpu}")
    one, two = rows[2], rows[3]
    cores = os.cpu_count() or 1
    # On `cores` cores, 2 workers cannot go faster than all cores busy with the CPU work of a frame, nor than 2 DIC
    # actors running flat out.
    bound = min(cores / ((one.dic_ms + one.other_ms) / 1000), 2 / (one.dic_ms / 1000)) / one.fps
    print(f"Ray / in-process (1 video): {rows[1].fps / rows[0].fps:.2f}x; job with 2 workers / 1 worker: "
          f"{two.fps / one.fps:.2f}x (at most {bound:.2f}x on {cores} cores from the 1-worker run's CPU time per "
          f"frame); 1 long video in {streams} parts / whole: {rows[5].fps / rows[4].fps:.2f}x")


def _bench_model(args: argparse.Namespace) -> int:
    from dicface.models.bench import bench_model
    from dicface.models.dic import DIC
    from dicface.models.inference import cpu_summary
    from dicface.models.registry import family, load_model

    cfg = run_config(args)
    if args.arch == "full":
        models = [(DIC(), "released DIC configuration (random weights)")]
    else:
        models = [(model, f"{record.name} (x{record.config.scale}, {record.file})")
                  for model, record in (load_model(r, cfg.model.num_steps)
                                        for r in family(cfg.model.weights, cfg.model.scale))]
    for model, label in models:
        n_params = sum(p.numel() for p in model.parameters())
        r = bench_model(model, cfg.inference, batch=cfg.inference.max_batch, iters=args.iters)
        size = model.cfg.input_size
        print(f"model: {label}, {size} -> 128 px, {n_params:,} parameters")
        print(f"device {r.device} ({cpu_summary()}), threads {r.threads}, batch {r.batch}, {r.iters} timed batches "
              f"per path")
        width = max(len(p.label) for p in r.paths)
        for path in r.paths:
            ratio = path.faces_per_s / r.paths[0].faces_per_s
            print(f"{path.label:<{width}} {path.faces_per_s:8.2f} faces/s  {ratio:5.2f}x  max |SR - plain|: "
                  f"{path.max_abs_diff:.2e}")
        print()
    return 0
