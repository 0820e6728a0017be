"""Commands on videos: ``enhance`` (a file, a stream URL, a job of many), ``stream``, ``eval-video``, ``config``."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from pathlib import Path

from dicface.configs.schema import RunConfig
from dicface.models.atomic import check_writable
from dicface.models.errors import InputError
from dicface.pipeline.cli.common import open_run, run_config, terminal_bars, write_report

logger = logging.getLogger(__name__)


def _warn_leftovers(*folders: Path) -> None:
    from dicface.pipeline.job import leftover_temporaries

    for folder in dict.fromkeys(folders):
        found = leftover_temporaries(folder)
        if found:
            logger.warning("dicface: warning: %s holds %d unfinished temporary file(s) of an interrupted run "
                           "(e.g. %s); they are ignored: delete them", folder, len(found), found[0].name)


def cmd_enhance(args: argparse.Namespace) -> int:
    from dicface.pipeline.job import check_output, enhance_file, enhance_split, find_videos
    from dicface.pipeline.runtime.plan import plan_run

    cfg = run_config(args)  # a wrong setting is reported before any input or output is looked at
    videos = find_videos(args.input)
    if videos is not None:
        _warn_leftovers(*(v.parent for v in videos), Path(args.output))
        return _enhance_job(args, cfg, videos)
    out = Path(args.output)
    plan = plan_run(cfg, args.input, out)
    source_path = args.input if plan.url else Path(args.input)
    check_output(out, source_path, args.overwrite)
    check_writable(out.parent)
    _warn_leftovers(out.parent)
    with open_run(args, cfg, plan) as runner:
        if plan.parts > 1:
            report = enhance_split(source_path, out, runner, plan.parts, cfg.encode, tracks_path=args.tracks,
                                   streams=plan.parts, min_seconds=plan.min_seconds, bars=terminal_bars,
                                   replace=args.overwrite)
        else:
            report = enhance_file(source_path, out, runner, cfg.encode, args.tracks, terminal_bars,
                                  replace=args.overwrite)
        usage = runner.usage()
    problems = report.problems()
    if problems:
        logger.warning("dicface: warning: %s: %s", source_path, problems)
    print(f"{report.line()} -> {out}")
    summary = report.to_dict()
    summary.update(input=str(source_path), output=str(out), options=vars(args) | {"output": str(out)},
                   config=cfg.to_dict())
    write_report(args, summary, usage)
    return 0


def _enhance_job(args: argparse.Namespace, cfg: RunConfig, videos: list[Path]) -> int:
    """Many videos into the folder ``-o``; a failing video is reported and the others still run. Exit 1 if any
    failed."""
    from dicface.models.atomic import atomic_output
    from dicface.pipeline.job import enhance_many
    from dicface.pipeline.report import usage_dicts, usage_line
    from dicface.pipeline.runtime.plan import plan_run
    from dicface.pipeline.sink import WRITABLE_SUFFIXES

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
    plan = plan_run(cfg, videos=len(videos))
    with open_run(args, cfg, plan) as runner:
        results = enhance_many(videos, out_dir, runner, cfg.encode, tracks_dir, args.overwrite, plan.streams,
                               terminal_bars)
        usage = runner.usage()
    width = max(len(r.source.name) for r in results)
    for r in results:
        if r.error:
            print(f"{r.source.name:<{width}}  FAILED  {r.error}")
        else:
            warning = r.report.problems()
            print(f"{r.source.name:<{width}}  ok      {r.report.frames_out} frames, {r.report.faces_enhanced} faces, "
                  f"{r.report.fps} frames/s -> {r.output}" + (f" (warning: {warning})" if warning else ""))
    failed = sum(r.error is not None for r in results)
    print(f"{len(results) - failed}/{len(results)} videos done" + (f", {failed} failed" if failed else ""))
    if usage:
        print(usage_line(usage))
    if args.report:
        rows = [{"input": str(r.source), "output": None if r.error else str(r.output), "error": r.error,
                 **(r.report.to_dict() if r.report else {})} for r in results]
        with atomic_output(args.report) as tmp:
            tmp.write_text(json.dumps({"videos": rows, "failed": failed, "pools": usage_dicts(usage),
                                      "config": cfg.to_dict()},
                                     indent=2))
    return 1 if failed else 0


def _stream_sink(args: argparse.Namespace, info, encode):  # noqa: ANN001, ANN202 -- lazy imports
    """An RTSP server URL, a folder (segments) or a file."""
    from dicface.pipeline.job import check_output
    from dicface.pipeline.live import SegmentSink
    from dicface.pipeline.sink import VideoSink
    from dicface.pipeline.source import is_url

    if is_url(args.output):  # the output's kind; the input's is the plan's
        return VideoSink(args.output, info, (), encode)
    out = Path(args.output)
    if out.is_dir() or not out.suffix:
        out.mkdir(parents=True, exist_ok=True)
        return SegmentSink(out, info, encode, args.segment_seconds)
    check_output(out, args.input, args.overwrite)
    check_writable(out.parent)
    return VideoSink(out, info, (), encode, args.overwrite)


def cmd_stream(args: argparse.Namespace) -> int:
    import threading

    from dicface.pipeline.live import LiveOptions, LiveSource
    from dicface.pipeline.runtime.plan import plan_run
    from dicface.pipeline.runtime.signals import finish_on_signals

    cfg = run_config(args)
    plan = plan_run(cfg, args.input)
    if not plan.url:
        raise InputError(f"{args.input}: not a stream URL; use 'dicface enhance' for files")
    try:
        live = LiveOptions(listen=args.listen, max_pending=args.max_pending, reconnect_timeout=args.reconnect_timeout)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    stop = threading.Event()
    timer = threading.Timer(args.duration, stop.set) if args.duration else None
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(finish_on_signals(stop))
            runner = stack.enter_context(open_run(args, cfg, plan))
            logger.info("%s %s", "waiting for" if args.listen else "connecting to", args.input)
            source = stack.enter_context(LiveSource(args.input, live, stop))
            sink = stack.enter_context(_stream_sink(args, source.info, cfg.encode))
            bar = stack.enter_context(terminal_bars(total=None, unit="frame", desc=args.input))

            def progress(report) -> None:  # noqa: ANN001 -- RunReport
                bar.update(report.frames_out - bar.n)
                bar.set_postfix(faces=report.faces_enhanced, dropped=source.dropped, reconnects=source.reconnects)

            if timer:
                timer.start()
            report = runner.run(source, sink, None, progress)
            report.dropped_frames, report.reconnects = source.dropped, source.reconnects
            usage = runner.usage()
    finally:
        if timer:
            timer.cancel()
    summary = report.to_dict()
    if report.input_warning:
        logger.warning("dicface: warning: %s: %s", args.input, report.input_warning)
    print(f"{report.frames_out} frames, {report.dropped_frames} dropped, {report.reconnects} reconnects, "
          f"{report.faces_enhanced} faces enhanced, {report.fps} frames/s -> {args.output}")
    summary.update(input=args.input, output=str(args.output), config=cfg.to_dict())
    write_report(args, summary, usage)
    return 0


def cmd_eval_video(args: argparse.Namespace) -> int:
    from dicface.pipeline.detect.regions import ScheduledDetector
    from dicface.pipeline.detect.spec import build_detector
    from dicface.pipeline.eval_video import evaluate, report_dict, table_lines, track_rows, write_plot
    from dicface.pipeline.tracks_file import tracks_from_file

    for path in (args.input, args.output):
        if not path.is_file():
            raise InputError(f"{path}: no such video file")
    tracks = tracks_from_file(args.tracks) if args.tracks else None
    cfg = run_config(args)
    detector = None if tracks else ScheduledDetector(build_detector(cfg.detect), cfg.detect)
    with terminal_bars(total=None, desc="eval-video", unit="frame") as bar:
        meter = evaluate(args.input, args.output, detector, tracks, progress=lambda n: bar.update(n - bar.n))
    summary, rows = meter.summary(), track_rows(meter)
    print("\n".join(table_lines(summary, rows)))
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
