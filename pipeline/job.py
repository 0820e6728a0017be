"""One video in, one video out: opens the source and the sink around a runner (``dicface enhance``, benchmarks).

The output is written atomically (``VideoSink``): on any error, nothing is left at the output path.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from models.atomic import atomic_output
from pipeline.io import EncodeOptions, VideoSink, open_source
from pipeline.runtime.local import LocalRunner, RunReport


def enhance_file(
    source_path: Path | str,
    out: Path,
    runner: LocalRunner,
    encode: EncodeOptions = EncodeOptions(),
    tracks_path: Path | None = None,
    show_progress: bool = True,
) -> RunReport:
    """Run ``runner`` on a video file, stream URL or image folder; write the video (and the tracks JSON lines if
    asked)."""
    options = runner.options
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_source(source_path))
        info = source.info
        width, height = round(info.width * options.upscale), round(info.height * options.upscale)
        sink = stack.enter_context(VideoSink(
            out, replace(info, width=width * (2 if options.preview else 1), height=height),
            source.audio_stream, encode))
        tracks_tmp = stack.enter_context(atomic_output(tracks_path)) if tracks_path else None
        tracks_file = stack.enter_context(open(tracks_tmp, "w")) if tracks_tmp else None
        bar = stack.enter_context(tqdm(total=info.frame_count, unit="frame", desc=Path(source_path).name,
                                       file=sys.stderr, disable=not show_progress))

        def progress(report: RunReport) -> None:
            bar.update(report.frames_out - bar.n)
            bar.set_postfix(faces=report.faces_enhanced)

        return runner.run(source, sink, tracks_file, progress)


def copy_video(source_path: Path | str, out: Path, encode: EncodeOptions = EncodeOptions()) -> RunReport:
    """Plain decode + re-encode with the same sink and options: the baseline of ``dicface bench pipeline``."""
    report = RunReport()
    start = time.perf_counter()
    with open_source(source_path) as source, VideoSink(out, source.info, source.audio_stream, encode) as sink:
        for frame in source:
            sink.write_audio(source.take_audio())
            sink.write(frame)
            report.frames_in += 1
            report.frames_out += 1
        sink.write_audio(source.take_audio())
    report.wall_seconds = time.perf_counter() - start
    return report
