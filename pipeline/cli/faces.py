"""Commands on face images and weights: ``sr``, ``eval``, ``demo``, ``models``, ``export-weights``."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dicface.models.errors import InputError
from dicface.pipeline.cli.common import run_config, terminal_bars


def _draw_landmarks(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Shape: (128, 128, 3) uint8, (K, 2) -> (256, 256, 3) uint8 with the points drawn (2x for visibility)."""
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    for x, y in landmarks * 2:
        cv2.circle(big, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1, lineType=cv2.LINE_AA)
    return big


def cmd_sr(args: argparse.Namespace) -> int:
    from dicface.models.atomic import prepare_output_dir
    from dicface.models.imageio import list_images, read_rgb, write_png

    cfg = run_config(args)
    paths = list_images(args.inputs)
    out_dir = prepare_output_dir(args.output)
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"two inputs share the name {dup!r}; outputs would overwrite each other")
    from dicface.pipeline.enhance import load_enhancer

    enhancer, _ = load_enhancer(cfg)
    batch = cfg.inference.max_batch
    with terminal_bars(total=len(paths), unit="face", desc="sr") as bar:
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            sr, landmarks = enhancer.still_faces([read_rgb(p) for p in chunk], cfg.align.max_reduction)
            for path, face, points in zip(chunk, sr, landmarks, strict=True):
                target = out_dir / f"{path.stem}.png"
                if target.resolve() == path.resolve():
                    raise InputError(f"{target}: output would overwrite the input; choose another -o folder")
                write_png(face, target)
                if args.landmarks:
                    write_png(_draw_landmarks(face, points), out_dir / f"{path.stem}_landmarks.png")
            bar.update(len(chunk))
    print(f"wrote {len(paths)} faces to {out_dir}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from dicface.models.atomic import atomic_output
    from dicface.models.data import read_landmarks
    from dicface.models.degrade import h264, jpeg
    from dicface.models.evaluate import evaluate_faces
    from dicface.models.identity import FaceIdentity
    from dicface.models.imageio import list_images, read_rgb
    from dicface.pipeline.enhance import load_member

    cfg = run_config(args)
    table = read_landmarks(args.landmarks) if args.landmarks else {}
    if args.seed and not table:
        raise InputError("--seed needs --landmarks (the seed comes from known landmarks)")
    paths = list_images(args.hr_dir)
    if args.seed:
        paths = [p for p in paths if p.name in table]
    paths = paths[: args.limit]
    resolver, record = load_member(cfg)
    lr_paths = _paired_lr(paths, args.lr_dir) if args.lr_dir else None
    compress, codec_note = None, ""
    if args.jpeg is not None:
        compress, codec_note = partial(jpeg, quality=args.jpeg), f", LR through JPEG quality {args.jpeg}"
    elif args.h264 is not None:
        compress, codec_note = partial(h264, crf=args.h264), f", LR through H.264 crf {args.h264}"

    def faces():  # noqa: ANN202
        with terminal_bars(total=len(paths), unit="face", desc="eval") as bar:
            for i, path in enumerate(paths):
                face = (read_rgb(path), table.get(path.name))
                yield face if lr_paths is None else (*face, read_rgb(lr_paths[i]))
                bar.update(1)

    identity = FaceIdentity() if table else None  # faces with landmarks: identity distance to the HR face
    result = evaluate_faces(faces(), resolver.stills, batch=cfg.inference.max_batch, seeded=args.seed,
                            lr_size=record.config.input_size, compress=compress, identity=identity,
                            hr_size=record.config.output_size)
    rows = result.table()
    text = (f"{result.count} faces, Y channel, {result.crop}-px border crop, Gaussian SSIM; "
            f"x{record.config.scale} ({record.config.input_size} -> {record.config.output_size} px{codec_note}), "
            f"weights {record.name}\n\n"
            f"{result.markdown()}\n\n"
            f"DIC vs bicubic: {rows[1]['psnr_y'] - rows[0]['psnr_y']:+.2f} dB PSNR-Y, "
            f"{rows[1]['ssim_y'] - rows[0]['ssim_y']:+.4f} SSIM-Y\n")
    print("\n" + text)
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"weights": str(record.file), "scale": record.config.scale,
                                       "jpeg": args.jpeg, "h264": args.h264,
                                       "faces": result.count, "results": rows}, indent=2))
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(text)
    return 0


def _paired_lr(hr_paths: list[Path], lr_dir: Path) -> list[Path]:
    """The LR face of each HR face: the file in ``lr_dir`` with the same stem."""
    from dicface.models.imageio import list_images

    by_stem = {p.stem: p for p in list_images([lr_dir])}
    missing = [p.name for p in hr_paths if p.stem not in by_stem]
    if missing:
        raise InputError(f"{lr_dir}: no LR face for {len(missing)} HR faces (e.g. {missing[0]}); "
                         "LR and HR files are paired by name")
    return [by_stem[p.stem] for p in hr_paths]


def cmd_demo(args: argparse.Namespace) -> int:
    from dicface.models.atomic import prepare_output_dir
    from dicface.pipeline.demo import DEMO_UPSCALE, FIDELITY_CRF, run_demo, run_fidelity_demo, run_video_demo
    from dicface.pipeline.enhance import load_member

    cfg = run_config(args)
    out_dir = prepare_output_dir(args.output)
    resolver, _ = load_member(cfg)
    written = run_demo(out_dir, resolver)
    print(f"wrote {len(written)} files to {out_dir}; see {written[-1]} (16-px input | bicubic | DIC)")
    if cfg.model.weights is None:
        sheet = run_fidelity_demo(out_dir, cfg)
        if sheet is not None:
            print(f"natural detail: see {sheet} (H.264 crf {FIDELITY_CRF} input: bicubic | faithful | natural | "
                  f"truth)")
    if not args.no_video:
        video = run_video_demo(out_dir, cfg, terminal_bars)
        print(f"video: {video[0]} -> {video[1]} (x{DEMO_UPSCALE}); see {video[-1]} (bicubic | dicface)")
    return 0


def cmd_export_weights(args: argparse.Namespace) -> int:
    import yaml

    from dicface.models.registry import export_weights

    metrics: dict[str, Any] = {}
    for item in args.metrics or []:
        key, _, path = item.rpartition("=")
        measured = json.loads(Path(path).read_text())
        if key:  # an eval table under its name, with the protocol it was measured in
            size = 128 // int(measured["scale"])
            metrics["protocol"] = (f"DIC: Y (BT.601), 8-px crop, Gaussian SSIM; LR = PIL bicubic 128->{size} of each "
                                   "HR face")
            metrics[key] = measured["results"]
        else:
            metrics.update(measured)
    if args.note:
        metrics["note"] = args.note
    training: dict[str, Any] = {"iterations": args.iterations}
    if args.train_config:
        training["config"] = yaml.safe_load(args.train_config.read_text())
    if args.what:
        training["what"] = args.what
    record = export_weights(args.checkpoint, args.name, args.to, default=args.default, metrics=metrics,
                            training=training, append_stage=args.append_stage, natural_of=args.natural_of)
    print(f"wrote {record.file} and its card ({record.sha256[:12]}…){' as the default' if record.default else ''}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from dicface.models.registry import WEIGHTS_DIR, list_weights, user_weights_dir

    records = list_weights()
    if not records:
        print(f"no weights in {user_weights_dir()} or {WEIGHTS_DIR}; pass --weights FILE to the commands")
    for r in records:
        mark = (f" (default {r.config.name})" if r.default else
                f" (natural-detail twin of {r.natural_of}: --fidelity below 1)" if r.natural_of else "")
        print(f"{r.name}{mark}: x{r.config.scale}, {r.config.input_size} -> {r.config.output_size} px, {r.file.name}  "
              f"{r.config}\n"
              f"  licence: {r.licence}\n  metrics: {r.metrics}")
    return 0
