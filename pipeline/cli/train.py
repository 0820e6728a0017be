"""Training commands: ``prepare-data`` and ``train``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dicface.models.errors import InputError
from dicface.pipeline.cli.common import terminal_bars

logger = logging.getLogger(__name__)


def cmd_prepare_data(args: argparse.Namespace) -> int:
    from dicface.pipeline.detect.dlib_backend import DlibDetector
    from dicface.pipeline.prepare import prepare_landmarks

    written, missed = prepare_landmarks(args.image_dir, DlibDetector(upsample=args.upsample), args.output,
                                        terminal_bars)
    print(f"wrote landmarks of {written} faces to {args.output}; no face found in {len(missed)} images"
          + (f" (e.g. {', '.join(missed[:3])})" if missed else ""))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from dicface.configs.schema import load_train_config
    from dicface.models.train import Trainer, load_training_data

    cfg = load_train_config(args.config, {"iterations": args.iterations, "out_dir": args.out_dir})
    last = Path(cfg.out_dir) / "last.pt"
    if last.is_file() and not args.resume:
        raise InputError(f"{last} exists: pass --resume to continue that run, or choose another --out-dir")
    if args.workers or args.address:
        from dicface.models.distributed import ClusterOptions, train_on_ray

        options = ClusterOptions(workers=args.workers or 1, gpus_per_worker=args.gpus_per_worker,
                                 threads_per_worker=args.threads, address=args.address)
        print(f"training on Ray: {options.workers} workers, {options.gpus_per_worker} GPUs each; "
              f"run folder {cfg.out_dir}", file=sys.stderr)
        train_on_ray(cfg, options, args.resume, terminal_bars)
        print(f"done: {cfg.out_dir} (last.pt, best.pt, log.csv)")
        return 0
    if args.resume and last.is_file():
        cfg = replace(cfg, init=None, hg_init=None)  # the resumed state replaces them: their files may be gone
    data, val = load_training_data(cfg, terminal_bars)
    trainer = Trainer(cfg, data, val)
    if args.resume and last.is_file():
        trainer.resume(last)
        logger.info("resuming from %s at iteration %d", last, trainer.iteration)
    logger.info("training on %d faces, %s parameters, %d threads, %s; run folder %s", len(data),
                f"{sum(p.numel() for p in trainer.model.parameters()):,}", torch.get_num_threads(), trainer.device,
                cfg.out_dir)
    trainer.run(terminal_bars)
    best = {"hg": f"best validation NME {-trainer.best_score:.4f}",
            "dicgan": f"the state validated last, iteration {trainer.best_score:.0f}"}.get(
        cfg.stage, f"best validation PSNR-Y {trainer.best_score:.2f} dB")
    print(f"done: {cfg.out_dir}/best.pt ({best})")
    return 0
