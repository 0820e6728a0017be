"""``dicface bench``: the model, the pipeline's throughput and the video path's quality, each measured in one run
(``models.bench``, ``pipeline.bench``: the measuring, the arithmetic and the tables; here only what to print)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dicface.models.errors import InputError
from dicface.pipeline.cli.common import run_config


def cmd_bench(args: argparse.Namespace) -> int:
    return {"pipeline": _bench_pipeline, "quality": _bench_quality, "model": _bench_model}[args.target](args)


def _bench_quality(args: argparse.Namespace) -> int:
    from dicface.pipeline.bench import QUALITY_FACES, bench_quality, bench_sizes, quality_lines, size_lines
    from dicface.pipeline.examples import astronaut_faces, folder_faces, heldout_faces
    from dicface.pipeline.talking import talking

    cfg = run_config(args)
    scale = int(cfg.enhance.upscale)
    if scale != cfg.enhance.upscale or not 2 <= scale <= 8:
        raise InputError(f"bench quality needs a whole --upscale between 2 and 8, got {cfg.enhance.upscale:g}")
    named = {"astronaut": astronaut_faces, "heldout": heldout_faces}
    sources = named[args.faces]() if args.faces in named else folder_faces(Path(args.faces))
    animation = talking if args.motion == "talking" else None
    faces = f"{args.faces} faces{' talking' if animation else ''}"
    print(f"gain over bicubic per face size: {faces}, H.264 crf {args.input_crf} input, {args.frames} "
          f"frames, against a xK render of the same scene; face regions only; default flags")
    print("\n".join(size_lines(bench_sizes(cfg, sources, frames=args.frames, crf=args.input_crf,
                                            animation=animation))))
    sharp = [f for f in sources if f.head.shape[1] >= max(QUALITY_FACES) * scale] or sources
    rows = bench_quality(cfg, args.frames, scale, args.input_crf, sharp, animation)
    print(f"\n{faces} {'/'.join(map(str, QUALITY_FACES))} px wide, H.264 crf {args.input_crf}, "
          f"{args.frames} frames, x{scale}, against a x{scale} render of the same scene; face regions only.\n"
          f"temporal: |output change - true change| between frames; warp: warping error along the input's flow "
          f"(no truth; bicubic {rows[0].temporal.mean('warp'):.3f}); detail: fine detail against the truth's (1: as "
          f"much); GMSD: lower is closer; identity: dlib face-descriptor distance to the truth (lower: same person)")
    print("\n".join(quality_lines(rows)))
    return 0


def _bench_pipeline(args: argparse.Namespace) -> int:
    from dicface.models.inference import (
        cpu_summary,
        resolve_backend,
        resolve_device,
        resolve_steps,
        run_precision,
    )
    from dicface.models.registry import family
    from dicface.pipeline.bench import bench_pipeline, bench_runtime, pipeline_lines, runtime_lines

    if args.input is not None and not args.input.is_file():
        raise InputError(f"{args.input}: no such video file")
    cfg = run_config(args)
    device = resolve_device(cfg.inference.device)
    precision = run_precision(cfg.inference)
    backend = resolve_backend(cfg.inference, device, precision)
    trained = {r.config.num_steps for r in family(cfg.model.weights, cfg.model.scale, upscale=cfg.enhance.upscale)}
    steps = "/".join(str(resolve_steps(cfg.model.num_steps, t, cfg.inference)) for t in sorted(trained))
    for bench in bench_pipeline(args.input, cfg, args.frames):
        faces = bench.faces
        name = args.input.name if args.input else (f"generated {bench.size[0]}x{bench.size[1]} clip, {len(faces)} "
                                                   f"faces of {min(faces)}-{max(faces)} px")
        print(f"{name}: {bench.rows[0].report.frames_in} frames, full-frame detection every {cfg.detect.every} "
              f"frames, {cfg.encode.codec} {cfg.encode.preset}; {cpu_summary()}, DIC on {backend} in {precision}, "
              f"{steps} recurrent steps")
        print("\n".join(pipeline_lines(bench)) + "\n")
    if cfg.runtime.runtime == "ray":  # in-process vs Ray, and a job on Ray with 1 vs 2 workers per pool
        rows = bench_runtime(cfg, frames=args.frames)
        print(f"runtime: generated 640x360 clips of {args.frames} frames, 3 faces of 18-22 px")
        print("\n".join(runtime_lines(rows, cfg.runtime.streams)))
    return 0


def _bench_model(args: argparse.Namespace) -> int:
    from dicface.models.bench import bench_model, model_lines
    from dicface.models.dic import DIC
    from dicface.models.inference import cpu_summary, resolve_steps
    from dicface.models.registry import default_members, family, load_model

    cfg = run_config(args)
    if args.arch == "full":
        models = [(DIC(), "released DIC configuration (random weights)")]
    else:
        everyone = cfg.model.weights is None and cfg.model.scale is None  # the members of every upscale
        records = default_members() if everyone else family(cfg.model.weights, cfg.model.scale)
        models = [(model, f"{record.name} (x{record.config.scale}, {record.file}), {model.cfg.num_steps} steps")
                  for model, record in (load_model(r, resolve_steps(cfg.model.num_steps, r.config.num_steps,
                                                                    cfg.inference)) for r in records)]
    for model, label in models:
        result = bench_model(model, cfg.inference, batch=cfg.inference.max_batch, iters=args.iters)
        parameters = sum(p.numel() for p in model.parameters())
        print("\n".join(model_lines(result, label, model.cfg.input_size, model.cfg.output_size, parameters,
                                     cpu_summary())) + "\n")
    return 0
