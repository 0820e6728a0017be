"""Video benchmarks measured in one run (``dicface bench pipeline`` and ``dicface bench quality``).

Both take ``make_runner(sr, seed)``, which builds the in-process runner from the user's flags, so the numbers are
those of ``dicface enhance`` with the same options.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.examples import face_clip_frames, make_face_clip, write_clip
from pipeline.io import EncodeOptions
from pipeline.job import copy_video, enhance_file, enhance_many
from pipeline.quality import VideoScore, read_frames, score_video
from pipeline.runtime.local import LocalRunner
from pipeline.runtime.sequencer import RunReport, StreamRunner

if TYPE_CHECKING:
    from pipeline.runtime.ray_runtime import RayRunner

MakeRunner = Callable[[bool, str], LocalRunner]  # (run DIC?, seed mode) -> runner
QUALITY_FACES = (16, 22, 30)  # face widths of the quality clip, px at 1x
BENCH_FACES = (18, 20, 22)  # face widths of the throughput clip: all within the default size policy


@dataclass(frozen=True)
class ThroughputRow:
    label: str
    report: RunReport
    fps: float


def bench_pipeline(source: Path | None, make_runner: MakeRunner, encode: EncodeOptions, frames: int = 100
                   ) -> list[ThroughputRow]:
    """Frames/s of a plain decode+encode, ``enhance --sr none`` and ``enhance`` on ``source`` (default: a generated
    1280x720 clip of 3 real faces ``BENCH_FACES`` px wide), in that order, in this run."""
    runs = [("decode+encode", None), ("enhance --sr none", make_runner(False, "none")),
            ("enhance", make_runner(True, "tracker"))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dicface-bench-") as tmp:
        work = Path(tmp)
        if source is None:
            source = work / "example_720p.mp4"
            make_face_clip(source, count=frames, width=1280, height=720, face_widths=BENCH_FACES)
        for label, runner in runs:
            start = time.perf_counter()
            if runner is None:
                report = copy_video(source, work / "out.mp4", encode)
            else:
                report = enhance_file(source, work / "out.mp4", runner, encode, show_progress=False)
            rows.append(ThroughputRow(label, report, report.frames_out / (time.perf_counter() - start)))
    return rows


@dataclass(frozen=True)
class QualityRow:
    label: str
    faces_enhanced: int
    score: VideoScore


def bench_quality(make_runner: MakeRunner, frames: int, scale: int) -> list[QualityRow]:
    """Bicubic, DIC and DIC seeded by the tracker at x``scale`` on a generated 320x180 clip, scored against a
    x``scale`` render of the same scene (``pipeline.quality``)."""
    clip_frames, _ = face_clip_frames(frames, 320, 180, QUALITY_FACES)
    truth, landmarks = face_clip_frames(frames, 320, 180, QUALITY_FACES, scale=scale)
    encode = EncodeOptions(codec="libx264", crf=0, preset="ultrafast")  # scores the method, not the encoder
    methods = [("bicubic", False, "none"), ("dic", True, "none"), ("dic + tracker seed", True, "tracker")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dicface-quality-") as tmp:
        clip, out = Path(tmp) / "clip.mp4", Path(tmp) / "out.mp4"
        write_clip(clip, clip_frames)
        for label, sr, seed in methods:
            report = enhance_file(clip, out, make_runner(sr, seed), encode, show_progress=False)
            rows.append(QualityRow(label, report.faces_enhanced, score_video(read_frames(out), truth, landmarks)))
    return rows


@dataclass(frozen=True)
class RuntimeRow:
    label: str
    frames: int
    fps: float
    dic_busy_percent: float | None  # DIC actors' busy share of the run (Ray rows)


def bench_runtime(make_local: Callable[[], StreamRunner], make_ray: Callable[[int], RayRunner],
                  encode: EncodeOptions,
                  frames: int = 60, videos: int = 4, streams: int = 2) -> list[RuntimeRow]:
    """The Ray runtime against the in-process runner, in this run: one generated 640x360 clip in-process and on
    Ray with one worker per pool (Ray's overhead), then a job of ``videos`` clips on Ray with 1 and with 2 workers
    per pool (``streams`` videos at once)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="dicface-bench-") as tmp:
        work = Path(tmp)
        clips = []
        for i in range(videos):
            clips.append(work / f"clip{i}.mp4")
            make_face_clip(clips[-1], count=frames, width=640, height=360, face_widths=BENCH_FACES)

        def timed_job(label: str, runner: StreamRunner, sources: list[Path],
                      busy: Callable[[], float | None]) -> None:
            out = work / label.replace(" ", "_").replace(",", "")
            out.mkdir()
            start = time.perf_counter()
            results = enhance_many(sources, out, runner, encode, streams=streams if len(sources) > 1 else 1)
            failed = [r.error for r in results if r.error]
            if failed:
                raise RuntimeError(f"benchmark run failed: {failed[0]}")
            done = sum(r.report.frames_out for r in results if r.report)
            rows.append(RuntimeRow(label, done, done / (time.perf_counter() - start), busy()))

        timed_job("in-process, 1 video", make_local(), clips[:1], lambda: None)
        for workers, sources, label in ((1, clips[:1], "Ray 1 worker, 1 video"),
                                        (1, clips, f"Ray 1 worker, job of {videos}"),
                                        (2, clips, f"Ray 2 workers, job of {videos}")):
            with make_ray(workers) as runner:
                timed_job(label, runner, sources, lambda r=runner: r.usage()["enhance"].busy_percent)
    return rows
