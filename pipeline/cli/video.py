"""Commands on videos: ``enhance`` (a file, a stream URL, a job of many), ``stream``, ``eval-video``, ``config``."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from dicface.configs.schema import (
    RunConfig,
)
from dicface.models.atomic import check_writable
from dicface.models.errors import InputError
from dicface.pipeline.cli.common import (
    input_problems,
    make_runner,
    pool_usage,
    run_config,
    terminal_bars,
    usage_line,
    write_report,
)
from dicface.pipeline.cli.parser import SPLIT_AUTO_SECONDS

logger = logging.getLogger(__name__)


def split_plan(cfg: RunConfig, source: Path | str, out: Path) -> tuple[int, float]:
    """(parts, shortest file to cut in seconds) for one video: ``--split N`` asks for N parts (an error where
    parts cannot run at once or be joined). ``auto`` cuts a long file on Ray into one part per two DIC actors: one
    stream keeps at most two DIC windows in flight, so it already keeps two actors busy (measured on 2 cores: a
    video split in 2 parts ran at 0.93x the whole video with 2 workers per pool)."""
    from dicface.pipeline.io import is_url
    from dicface.pipeline.runtime.build import use_ray
    from dicface.pipeline.runtime.ray_runtime import default_workers
    from dicface.pipeline.segments import SPLITTABLE_SUFFIXES

    splittable = not is_url(source) and Path(source).is_file() and out.suffix.lower() in SPLITTABLE_SUFFIXES
    split = cfg.runtime.split
    if split == "auto":
        parts = (cfg.runtime.workers or default_workers()) // 2
        ok = parts > 1 and splittable and use_ray(cfg, many=False)
        return (parts, SPLIT_AUTO_SECONDS) if ok else (1, 0.0)
    assert isinstance(split, int)
    if split > 1 and not use_ray(cfg, many=False):
        raise InputError("--split runs the parts at once on Ray actor pools: add --runtime ray")
    if split > 1 and not splittable:
        raise InputError(f"--split cuts a video file into {', '.join(SPLITTABLE_SUFFIXES)} parts; "
                         f"{source} -> {out} cannot be split (use --split 1)")
    return split, 0.0


def _warn_leftovers(*folders: Path) -> None:
    from dicface.pipeline.job import leftover_temporaries

    for folder in dict.fromkeys(folders):
        found = leftover_temporaries(folder)
        if found:
            logger.warning("dicface: warning: %s holds %d unfinished temporary file(s) of an interrupted run "
                           "(e.g. %s); they are ignored: delete them", folder, len(found), found[0].name)


def cmd_enhance(args: argparse.Namespace) -> int:
    from dicface.pipeline.io import is_url
    from dicface.pipeline.job import check_output, enhance_file, enhance_split, find_videos

    cfg = run_config(args)  # a wrong setting is reported before any input or output is looked at
    videos = find_videos(args.input)
    if videos is not None:
        _warn_leftovers(*(v.parent for v in videos), Path(args.output))
        return _enhance_job(args, cfg, videos)
    source_path, out = (args.input if is_url(args.input) else Path(args.input)), Path(args.output)
    check_output(out, source_path, args.overwrite)
    check_writable(out.parent)
    _warn_leftovers(out.parent)
    encode = cfg.encode
    parts, min_seconds = split_plan(cfg, source_path, out)
    with contextlib.ExitStack() as stack:
        runner = make_runner(args, cfg, stack, many=False)
        if parts > 1:
            report = enhance_split(source_path, out, runner, parts, encode, args.tracks, parts, min_seconds,
                                   terminal_bars, replace=args.overwrite)
        else:
            report = enhance_file(source_path, out, runner, encode, args.tracks, terminal_bars,
                                  replace=args.overwrite)
        usage = pool_usage(runner)
    summary = report.to_dict()
    problems = input_problems(report)
    if problems:
        logger.warning("dicface: warning: %s: %s", source_path, problems)
    members = ", ".join(f"{k} {v}" for k, v in sorted(report.faces_by_member.items(), key=lambda kv: -int(kv[0][1:])))
    print(f"{report.frames_out}/{report.frames_in} frames, {report.faces_enhanced} faces enhanced"
          f"{f' ({members})' if members else ''}, "
          f"{report.tracks} tracks, {summary['fps']} frames/s -> {out}")
    summary.update(input=str(source_path), output=str(out), options=vars(args) | {"output": str(out)},
                   config=cfg.to_dict())
    write_report(args, summary, usage)
    return 0


def _enhance_job(args: argparse.Namespace, cfg: RunConfig, videos: list[Path]) -> int:
    """Many videos into the folder ``-o``; a failing video is reported and the others still run. Exit 1 if any
    failed."""
    from dicface.models.atomic import atomic_output
    from dicface.pipeline.io import WRITABLE_SUFFIXES
    from dicface.pipeline.job import enhance_many
    from dicface.pipeline.runtime.build import use_ray

    if not videos:
        raise InputError(f"{args.input}: no video matches")
    out_dir = Path(args.output)
    if out_dir.suffix.lower() in WRITABLE_SUFFIXES:
        raise InputError(f"{args.input} holds {len(videos)} videos: -o must be a folder, not {out_dir.name}")
    check_writable(out_dir.parent)
    out_dir.mkdir(exist_ok=True)
    tracks_dir = Path(args.tracks) if args.tracks else None
    if tracks_dir:
        tracks_dir.mkdir(parents=True, exist_ok=True)
    encode = cfg.encode
    with contextlib.ExitStack() as stack:
        on_ray = use_ray(cfg, many=len(videos) > 1)
        runner = make_runner(args, cfg, stack, many=len(videos) > 1)
        streams, status = (cfg.runtime.streams, runner.queue_line) if on_ray else (1, None)
        results = enhance_many(videos, out_dir, runner, encode, tracks_dir, args.overwrite, streams, status,
                               terminal_bars)
        usage = pool_usage(runner)
    width = max(len(r.source.name) for r in results)
    for r in results:
        if r.error:
            print(f"{r.source.name:<{width}}  FAILED  {r.error}")
        else:
            warning = input_problems(r.report)
            print(f"{r.source.name:<{width}}  ok      {r.report.frames_out} frames, {r.report.faces_enhanced} faces, "
                  f"{r.report.to_dict()['fps']} frames/s -> {r.output}" + (f" (warning: {warning})" if warning else ""))
    failed = sum(r.error is not None for r in results)
    print(f"{len(results) - failed}/{len(results)} videos done" + (f", {failed} failed" if failed else ""))
    if usage:
        print(usage_line(usage))
    if args.report:
        rows = [{"input": str(r.source), "output": None if r.error else str(r.output), "error": r.error,
                 **(r.report.to_dict() if r.report else {})} for r in results]
        with atomic_output(args.report) as tmp:
            tmp.write_text(json.dumps({"videos": rows, "failed": failed, "pools": usage, "config": cfg.to_dict()},
                                     indent=2))
    return 1 if failed else 0


def _stream_sink(args: argparse.Namespace, info, encode):  # noqa: ANN001, ANN202 -- lazy imports
    """An RTSP server URL, a folder (segments) or a file."""
    from dicface.pipeline.io import VideoSink, is_url
    from dicface.pipeline.job import check_output
    from dicface.pipeline.live import SegmentSink

    if is_url(args.output):
        return VideoSink(args.output, info, (), encode)
    out = Path(args.output)
    if out.is_dir() or not out.suffix:
        out.mkdir(parents=True, exist_ok=True)
        return SegmentSink(out, info, encode, args.segment_seconds)
    check_output(out, args.input, args.overwrite)
    check_writable(out.parent)
    return VideoSink(out, info, (), encode, args.overwrite)


def cmd_stream(args: argparse.Namespace) -> int:
    import signal
    import threading

    from dicface.pipeline.io import is_url
    from dicface.pipeline.live import LiveOptions, LiveSource

    if not is_url(args.input):
        raise InputError(f"{args.input}: not a stream URL; use 'dicface enhance' for files")
    cfg = run_config(args)
    try:
        live = LiveOptions(listen=args.listen, max_pending=args.max_pending, reconnect_timeout=args.reconnect_timeout)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    encode = cfg.encode
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        print(f"\ndicface: {signal.Signals(signum).name}: finishing the stream", file=sys.stderr)
        stop.set()
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends at once

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    timer = threading.Timer(args.duration, stop.set) if args.duration else None
    try:
        with contextlib.ExitStack() as stack:
            runner = make_runner(args, cfg, stack, many=False)
            logger.info("%s %s", "waiting for" if args.listen else "connecting to", args.input)
            source = stack.enter_context(LiveSource(args.input, live, stop))
            sink = stack.enter_context(_stream_sink(args, source.info, encode))
            bar = stack.enter_context(terminal_bars(total=None, unit="frame", desc=args.input))

            def progress(report) -> None:  # noqa: ANN001 -- RunReport
                bar.update(report.frames_out - bar.n)
                bar.set_postfix(faces=report.faces_enhanced, dropped=source.dropped, reconnects=source.reconnects)

            if timer:
                timer.start()
            report = runner.run(source, sink, None, progress)
            report.dropped_frames, report.reconnects = source.dropped, source.reconnects
            usage = pool_usage(runner)
    finally:
        if timer:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = report.to_dict()
    if report.input_warning:
        logger.warning("dicface: warning: %s: %s", args.input, report.input_warning)
    print(f"{report.frames_out} frames, {report.dropped_frames} dropped, {report.reconnects} reconnects, "
          f"{report.faces_enhanced} faces enhanced, {summary['fps']} frames/s -> {args.output}")
    summary.update(input=args.input, output=str(args.output), config=cfg.to_dict())
    write_report(args, summary, usage)
    return 0


def cmd_eval_video(args: argparse.Namespace) -> int:
    from dicface.pipeline.detect.regions import ScheduledDetector
    from dicface.pipeline.eval_video import evaluate, report_dict, track_rows, write_plot
    from dicface.pipeline.runtime.build import detector_spec
    from dicface.pipeline.tracks_file import tracks_from_file

    for path in (args.input, args.output):
        if not path.is_file():
            raise InputError(f"{path}: no such video file")
    tracks = tracks_from_file(args.tracks) if args.tracks else None
    cfg = run_config(args)
    detector = None if tracks else ScheduledDetector(detector_spec(cfg).build(), cfg.detect.schedule())
    with terminal_bars(total=None, desc="eval-video", unit="frame") as bar:
        meter = evaluate(args.input, args.output, detector, tracks, progress=lambda n: bar.update(n - bar.n))
    summary, rows = meter.summary(), track_rows(meter)
    print(f"{'track':>5} {'pairs':>5} {'warp out/bicubic':>17} {'appearance out/bicubic':>23} {'jitter':>8}")
    for row in rows:
        jitter = f"{row.jitter:8.4f}" if row.jitter is not None else f"{'-':>8}"
        print(f"{row.track_id:>5} {row.frames:>5} {row.warp:8.3f}/{row.warp_bicubic:<8.3f} "
              f"{row.appearance:11.3f}/{row.appearance_bicubic:<11.3f} {jitter}")
    overall = summary.to_dict()
    if not summary.pairs:
        print("no face was tracked in two consecutive frames: nothing to measure")
    else:
        print(f"{'all':>5} {summary.pairs:>5} {overall['warping_error']:8.3f}/{overall['warping_error_bicubic']:<8.3f} "
              f"{overall['appearance_change']:11.3f}/{overall['appearance_change_bicubic']:<11.3f} "
              f"{overall['landmark_jitter'] if overall['landmark_jitter'] is not None else '-':>8}")
        print("warping error: change along the input's motion that the input does not show (Y levels; lower is "
              "steadier); bicubic: the same for a bicubic upscale of the input")
    if args.json:
        from dicface.models.atomic import atomic_output

        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(report_dict(summary, rows) | {"input": str(args.input),
                                                                     "output": str(args.output)}, indent=2))
    if args.plot:
        write_plot(meter, args.plot, f"{args.output.name} vs {args.input.name}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    print(yaml.safe_dump(json.loads(json.dumps(run_config(args).to_dict())), sort_keys=False), end="")
    return 0
