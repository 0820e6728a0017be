"""Videos in, videos out: opens the source and the sink around a runner (``dicface enhance``, benchmarks), for one
video or a job of many (a folder or a glob), where a failing video is reported and the others still run.

Outputs are written atomically (``VideoSink``): on any error, nothing is left at the output path.
"""

from __future__ import annotations

import contextlib
import glob
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from dicface.configs.video import EncodeOptions
from dicface.models.atomic import TEMPORARY_MARK, atomic_output
from dicface.models.errors import DicfaceError, InputError, OutputExists
from dicface.models.progress import BarFactory, no_bars
from dicface.pipeline.report import RunReport, merge_reports
from dicface.pipeline.runtime.reader import ReadAhead, Source
from dicface.pipeline.runtime.sequencer import StreamRunner
from dicface.pipeline.segments import (
    SPLITTABLE_SUFFIXES,
    join_videos,
    part_path,
    plan_segments,
    probe_timeline,
)
from dicface.pipeline.sink import WRITABLE_SUFFIXES, VideoSink
from dicface.pipeline.source import FileSource, is_url, open_source
from dicface.pipeline.tracks_file import join_tracks

T = TypeVar("T")


def enhance_file(
    source_path: Path | str,
    out: Path,
    runner: StreamRunner,
    encode: EncodeOptions = EncodeOptions(),
    tracks_path: Path | None = None,
    bars: BarFactory = no_bars,
    position: int | None = None,
    on_progress: Callable[[RunReport], None] | None = None,
    *,
    replace: bool = True,
) -> RunReport:
    """Run ``runner`` on a video file, stream URL or image folder; write the video (and the tracks JSON lines if
    asked). Progress goes to a bar from ``bars`` (at line ``position`` among a job's) and to ``on_progress``.
    ``replace=False``: the video never replaces a file that appeared at ``out`` during the run."""
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_source(source_path))
        info = source.info
        sink = stack.enter_context(VideoSink(out, runner.sequencer.output_info(info), source.copy_streams, encode,
                                             replace))
        tracks_tmp = stack.enter_context(atomic_output(tracks_path)) if tracks_path else None
        tracks_file = stack.enter_context(open(tracks_tmp, "w")) if tracks_tmp else None
        bar = stack.enter_context(bars(total=info.frame_count, unit="frame", desc=Path(source_path).name,
                                       position=position, leave=position is None))

        def progress(report: RunReport) -> None:
            bar.update(report.frames_out - bar.n)
            bar.set_postfix({"faces": report.faces_enhanced})
            if on_progress:
                on_progress(report)

        return run_read_ahead(runner, source, sink, tracks_file, progress)


def run_read_ahead(runner: StreamRunner, source: Source, sink: VideoSink, tracks: IO[str] | None,
                   progress: Callable[[RunReport], None]) -> RunReport:
    """``runner.run`` on ``source`` decoded on a thread of its own; the report's decode seconds are that thread's
    busy time (as encode's are the writer's), not the stream's waits for it."""
    with ReadAhead(source) as ahead:
        report = runner.run(ahead, sink, tracks, progress)
    report.seconds["decode"] = ahead.busy_seconds
    return report


class Stopped(Exception):
    """Raised in a worker thread, at its next progress report, once another thread failed or was interrupted."""


def run_threads(work: Callable[[int], T], count: int, threads: int, stop: threading.Event) -> list[T]:
    """``[work(0), ..., work(count - 1)]`` on ``threads`` threads. On an error or Ctrl-C the calls not started are
    cancelled and ``stop`` is set: running calls check it in their progress callbacks (raise ``Stopped``), so
    the error reaches the user without waiting for the other videos or parts to finish."""
    with ThreadPoolExecutor(max(1, threads)) as pool:
        futures = [pool.submit(work, i) for i in range(count)]
        try:
            return [f.result() for f in futures]
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            raise


def enhance_split(
    source_path: Path,
    out: Path,
    runner: StreamRunner,
    parts: int,
    encode: EncodeOptions = EncodeOptions(),
    tracks_path: Path | None = None,
    streams: int = 1,
    min_seconds: float = 0.0,
    bars: BarFactory = no_bars,
    *,
    replace: bool = True,
) -> RunReport:
    """``enhance_file`` on a long file cut into ``parts`` segments, ``streams`` of them at once (threads sharing
    the runner: more than one needs a runner whose services take concurrent calls: Rays), joined without
    re-encoding (``pipeline.segments``). A file shorter than ``min_seconds``, or too short to cut, runs whole."""
    if out.suffix.lower() not in SPLITTABLE_SUFFIXES:
        raise ValueError(f"{out}: parts are joined into {', '.join(SPLITTABLE_SUFFIXES)} only")
    timeline = probe_timeline(source_path)
    tail = runner.sequencer.enhance.fusion.delay
    segments = plan_segments(timeline, parts, tail=tail) if timeline and timeline.seconds >= min_seconds else []
    if len(segments) < 2:
        return enhance_file(source_path, out, runner, encode, tracks_path, bars, replace=replace)
    started = time.perf_counter()
    done: dict[int, int] = {}
    lock, stop = threading.Lock(), threading.Event()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.parts-", dir=out.parent) as tmp, \
            bars(total=len(timeline.pts), unit="frame", desc=f"{source_path.name} ({len(segments)} parts)") as bar:
        folder = Path(tmp)

        def one(i: int) -> RunReport:
            def progress(report: RunReport) -> None:
                if stop.is_set():
                    raise Stopped
                with lock:
                    done[i] = report.frames_out
                    bar.update(sum(done.values()) - bar.n)

            with FileSource(source_path, span=segments[i].span) as source, \
                    VideoSink(part_path(folder, i), runner.sequencer.output_info(source.info), (), encode) as sink, \
                    open(part_path(folder, i, ".tracks.jsonl"), "w") as tracks:
                return run_read_ahead(runner, source, sink, tracks, progress)

        report = merge_reports(run_threads(one, len(segments), streams, stop))
        report.tracks = join_tracks([part_path(folder, i, ".tracks.jsonl") for i in range(len(segments))],
                                    tracks_path)
        dropped = join_videos([part_path(folder, i) for i in range(len(segments))], source_path, out, replace)
        report.dropped_streams += [name for name in dropped if name not in report.dropped_streams]
    report.wall_seconds = time.perf_counter() - started
    return report


def copy_video(source_path: Path | str, out: Path, encode: EncodeOptions = EncodeOptions()) -> RunReport:
    """Plain decode + re-encode with the same sink and options: the baseline of ``dicface bench pipeline``."""
    report = RunReport()
    start = time.perf_counter()
    with open_source(source_path) as source, VideoSink(out, source.info, source.copy_streams, encode) as sink:
        for frame in source:
            sink.write_packets(source.take_packets())
            sink.write(frame)
            report.frames_in += 1
            report.frames_out += 1
        sink.write_packets(source.take_packets())
    report.wall_seconds = time.perf_counter() - start
    return report


def check_output(out: Path, source: Path | str, overwrite: bool) -> None:
    """Refuse an output path that is the input, or that exists unless ``overwrite``."""
    if out.exists() and isinstance(source, Path) and out.resolve() == source.resolve():
        raise InputError(f"{out}: the output would overwrite the input; choose another -o")
    if out.exists() and not overwrite:
        raise OutputExists(f"{out} exists; pass --overwrite to replace it")


VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".mpg",
                  ".mpeg", ".3gp")


def find_videos(source: str) -> list[Path] | None:
    """The videos of a job: a folder holding video files, or a glob pattern (``clips/*.mp4``). None when
    ``source`` is one video, a folder of frames or a stream URL. Hidden files are never inputs: among them are the
    temporary files of an interrupted run (``leftover_temporaries``)."""
    if is_url(source):
        return None
    if any(c in source for c in "*?["):
        return sorted(Path(p) for p in glob.glob(source) if Path(p).is_file() and not Path(p).name.startswith("."))
    folder = Path(source)
    if not folder.is_dir():
        return None
    videos = sorted(p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    return videos or None


def leftover_temporaries(folder: Path) -> list[Path]:
    """Unfinished outputs that a killed run (SIGKILL, power loss) left in ``folder`` (``models.atomic`` names)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and TEMPORARY_MARK in p.name)


@dataclass
class VideoResult:
    """One video of a job: its report, or the one-line error that stopped it (the others still run)."""

    source: Path
    output: Path
    report: RunReport | None = None
    error: str | None = None


def output_name(source: Path) -> str:
    """The output file name for an input video: same name, and .mp4 where the container cannot be written."""
    return source.name if source.suffix.lower() in WRITABLE_SUFFIXES else f"{source.stem}.mp4"


def enhance_many(
    sources: list[Path],
    out_dir: Path,
    runner: StreamRunner,
    encode: EncodeOptions = EncodeOptions(),
    tracks_dir: Path | None = None,
    overwrite: bool = False,
    streams: int = 1,
    bars: BarFactory = no_bars,
) -> list[VideoResult]:
    """Run ``runner`` on each video, ``streams`` at a time (threads sharing the runner: its pools batch across
    them), writing ``out_dir/<name>``; a failing video is recorded and the others go on. Results keep the order
    of ``sources``. With two videos or more: one bar for the job (frames/s, and the pools' queues on Ray), one per
    video running."""
    names = [output_name(s) for s in sources]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash:
        raise InputError(f"two inputs would both be written to {out_dir / clash}; rename one of them")
    concurrent = streams > 1 and len(sources) > 1
    lock, stop = threading.Lock(), threading.Event()
    frames_done: dict[int, int] = {}
    slots = list(range(1, streams + 1))
    with (bars if len(sources) > 1 else no_bars)(total=len(sources), unit="video", desc="job", position=0) as job_bar:
        started = time.perf_counter()

        def job_progress(i: int, report: RunReport) -> None:
            if stop.is_set():
                raise Stopped
            with lock:
                frames_done[i] = report.frames_out
                frames = sum(frames_done.values())
                line, pools = {"fps": f"{frames / (time.perf_counter() - started):.1f}"}, runner.queue_line()
                job_bar.set_postfix(line | ({"pools": pools} if pools else {}), refresh=True)

        def one(i: int) -> VideoResult:
            source = sources[i]
            out = out_dir / output_name(source)
            result = VideoResult(source, out)
            with lock:
                slot = slots.pop(0) if concurrent else None
            try:
                check_output(out, source, overwrite)
                tracks = tracks_dir / f"{source.stem}.tracks.jsonl" if tracks_dir else None
                result.report = enhance_file(source, out, runner, encode, tracks, bars, slot,
                                             lambda r: job_progress(i, r), replace=overwrite)
            except DicfaceError as exc:
                result.error = str(exc)
            finally:
                with lock:
                    if slot is not None:
                        slots.append(slot)
                    job_bar.update(1)
            return result

        return run_threads(one, len(sources), streams, stop)
