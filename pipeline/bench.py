"""Video benchmarks measured in one run (``dicface bench pipeline``, ``quality`` and the runtimes), their arithmetic
and their tables (each ``*_lines`` function gives the lines the command prints).

Each takes the user's ``RunConfig`` and varies it with ``dataclasses.replace`` (``variant``) where a row asks for
other settings; runners are built from it as ``dicface enhance`` builds them (``open_runner``), so the numbers are
those of ``dicface enhance`` with the same options.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dicface.configs.schema import RunConfig, SeedMode
from dicface.configs.video import EncodeOptions
from dicface.pipeline.enhance import Enhancer
from dicface.pipeline.examples import (
    Animation,
    FaceSource,
    back_and_forth,
    face_clip_frames,
    make_face_clip,
    write_clip,
)
from dicface.pipeline.job import copy_video, enhance_file, enhance_many, enhance_split
from dicface.pipeline.quality import VideoScore, read_frames, score_video
from dicface.pipeline.report import RunReport
from dicface.pipeline.runtime.build import open_runner
from dicface.pipeline.runtime.plan import RunMode
from dicface.pipeline.runtime.sequencer import StreamRunner
from dicface.pipeline.temporal import TemporalSummary
from dicface.pipeline.types import FaceCrop

LOSSLESS = EncodeOptions(codec="libx264", crf=0, preset="ultrafast")  # the quality benches score the method, not the
# encoder
QUALITY_FACES = (20, 26, 32)  # face widths of the quality clip, px at 1x
BENCH_FACES = (18, 20, 22)  # face widths of the throughput clips: small faces, as DIC's members take them
# The throughput clips: (width, height, face widths): the small faces at 720p and 1080p, and two large faces (100-px
# heads) at 1080p, which cost more per face (a large face's member, or the frame's own resize)
BENCH_CLIPS: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (1280, 720, BENCH_FACES), (1920, 1080, BENCH_FACES), (1920, 1080, (100, 100)))


def variant(cfg: RunConfig, seed: SeedMode | None = None, feedback: bool | None = None,
            fusion: float | None = None, upscale: float | None = None) -> RunConfig:
    """``cfg`` with the ``enhance`` settings given (fusion: its weight) in place of its own."""
    e = cfg.enhance
    return replace(cfg, enhance=replace(
        e, seed=e.seed if seed is None else seed, feedback=e.feedback if feedback is None else feedback,
        fusion=e.fusion if fusion is None else replace(e.fusion, weight=fusion),
        upscale=e.upscale if upscale is None else upscale))


@dataclass(frozen=True)
class ThroughputRow:
    label: str
    report: RunReport
    fps: float


@dataclass(frozen=True)
class DicRate:
    """DIC inside the pipeline against DIC alone on as many faces per call, same member, seeded the same way."""

    batch: float  # faces per DIC call in the pipeline
    pipeline_faces_per_s: float  # faces / the enhance stage's seconds
    alone_faces_per_s: float

    @property
    def ratio(self) -> float:
        return self.pipeline_faces_per_s / self.alone_faces_per_s


@dataclass(frozen=True)
class PipelineBench:
    size: tuple[int, int]
    faces: tuple[int, ...]  # the generated clip's face widths (empty: the user's video)
    rows: list[ThroughputRow]  # decode+encode, enhance --sr none, enhance
    dic: DicRate | None  # None: no face was enhanced


def _crops(input_size: int, batch: int) -> list[FaceCrop]:
    """``batch`` seeded random crops of ``input_size`` px."""
    rng = np.random.default_rng(0)
    seed = rng.uniform(40, 88, (68, 2)).astype(np.float32)
    return [FaceCrop(0, i, (0.0, 0.0, 1.0, 1.0), rng.integers(0, 256, (input_size, input_size, 3), np.uint8), seed)
            for i in range(batch)]


def warm_up(enhancer: Enhancer) -> None:
    """One seeded batch through each member: what a first call builds (an OpenVINO conversion, ~3 s, or int8
    quantisation, ~15 s, each cached on disk after) is not timed as throughput."""
    for size in enhancer.input_sizes:
        enhancer(_crops(size, 2))


def dic_alone(enhancer: Enhancer, input_size: int, batch: int, repeats: int = 3) -> float:
    """Faces/s of ``enhancer`` on ``batch`` seeded crops of ``input_size`` px (a warm-up call first)."""
    crops = _crops(input_size, batch)
    enhancer(crops)
    start = time.perf_counter()
    for _ in range(repeats):
        enhancer(crops)
    return repeats * batch / (time.perf_counter() - start)


def bench_pipeline(source: Path | None, cfg: RunConfig, frames: int = 100,
                   clips: tuple[tuple[int, int, tuple[int, ...]], ...] = BENCH_CLIPS) -> list[PipelineBench]:
    """Frames/s of a plain decode+encode, ``enhance --sr none`` (each the better of two runs) and ``enhance`` on
    ``source`` (default: generated clips of real faces, ``clips``: width, height, face widths), in this run; and the
    pipeline's DIC faces/s against DIC alone at the batch the pipeline formed."""
    benches = []
    with tempfile.TemporaryDirectory(prefix="dicface-bench-") as tmp:
        work = Path(tmp)
        for width, height, faces in clips if source is None else ((0, 0, ()),):
            clip = source
            if clip is None:
                clip = work / f"example_{height}p.mp4"
                make_face_clip(clip, count=frames, width=width, height=height, face_widths=faces)
            runner = open_runner(cfg)
            warm_up(runner.services.enhancer)
            runs = (("decode+encode", None), ("enhance --sr none", open_runner(cfg, RunMode(sr=False))),
                    ("enhance", runner))
            encode = cfg.encode
            best: dict[str, ThroughputRow] = {}
            # the two fast rows twice, interleaved, and the faster of each kept: one slow moment of a shared
            # machine would otherwise move their ratio by 10-20 %
            for label, run in (*runs[:2], *runs[:2], runs[2]):
                start = time.perf_counter()
                if run is None:
                    report = copy_video(clip, work / "out.mp4", encode)
                else:
                    report = enhance_file(clip, work / "out.mp4", run, encode)
                row = ThroughputRow(label, report, report.frames_out / (time.perf_counter() - start))
                if label not in best or row.fps > best[label].fps:
                    best[label] = row
            rows = [best[label] for label, _ in runs]
            report = rows[-1].report
            dic = None
            if report.faces_enhanced and report.dic_calls:
                enhancer = runner.services.enhancer
                member = max(report.faces_by_member, key=report.faces_by_member.__getitem__)
                size = next(s for s, c in enhancer.configs.items() if c.name == member)
                batch = report.faces_enhanced / report.dic_calls
                alone = dic_alone(enhancer, size, max(1, round(batch)))
                dic = DicRate(batch, report.faces_enhanced / report.seconds["enhance"], alone)
            benches.append(PipelineBench((width, height), faces, rows, dic))
    return benches


@dataclass(frozen=True)
class QualityRow:
    label: str
    faces_enhanced: int
    score: VideoScore
    temporal: TemporalSummary  # the ground-truth-free measures of the same output


# label, run DIC?, the enhance settings of the row (``variant``; the rest are the user's)
QUALITY_METHODS: tuple[tuple[str, bool, dict[str, object]], ...] = (
    ("bicubic", False, {}),
    ("dic, frame by frame", True, {"seed": "none", "fusion": 0.0, "feedback": False}),
    ("dic + tracker seed", True, {"seed": "tracker", "fusion": 0.0, "feedback": False}),
    ("dic + seed + feedback", True, {"seed": "tracker", "fusion": 0.0, "feedback": True}),
    ("dicface (seed + fusion)", True, {"seed": "tracker", "feedback": False}),
)


def bench_quality(cfg: RunConfig, frames: int, scale: int, crf: int = 26,
                  sources: list[FaceSource] | None = None, animation: Animation | None = None) -> list[QualityRow]:
    """``QUALITY_METHODS`` at x``scale`` on a generated 360x200 clip of faces ``QUALITY_FACES`` px wide (H.264 at
    ``crf``; deformed frame by frame by ``animation``, e.g. talking), scored against a x``scale`` render of the
    same scene (``pipeline.quality``) and without it (``pipeline.temporal``)."""
    size = (360, 200)
    clip_frames, _ = face_clip_frames(frames, *size, QUALITY_FACES, sources=sources, animation=animation)
    truth, landmarks = face_clip_frames(frames, *size, QUALITY_FACES, scale=scale, sources=sources,
                                        animation=animation)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dicface-quality-") as tmp:
        clip, out = Path(tmp) / "clip.mp4", Path(tmp) / "out.mp4"
        write_clip(clip, clip_frames, audio=False, crf=crf)
        for label, sr, settings in QUALITY_METHODS:
            with open_runner(variant(cfg, upscale=scale, **settings), RunMode(sr=sr, measure=True)) as runner:
                report = enhance_file(clip, out, runner, LOSSLESS)
            assert report.temporal is not None
            rows.append(QualityRow(label, report.faces_enhanced, score_video(read_frames(out), truth, landmarks),
                                   report.temporal))
    return rows


SIZE_BINS = (16, 24, 32, 48, 64, 96, 128, 192, 256)  # face (head) widths at 1x, px (landmark extent: about half)


@dataclass(frozen=True)
class SizeRow:
    """One face size at one upscale: bicubic and dicface (default flags) on the same compressed clip."""

    width: int
    scale: int
    faces: int  # faces in the clip
    truth_enlarged: float  # how much the xK truth enlarges its source photo's face (1: sharp)
    bicubic: VideoScore
    dicface: VideoScore
    by_member: dict[str, int]  # crops routed to each DIC member

    @property
    def gain(self) -> float:
        return self.dicface.psnr - self.bicubic.psnr


def bench_sizes(cfg: RunConfig, sources: list[FaceSource], frames: int = 10, crf: int = 26,
                scales: tuple[int, ...] = (2, 4), widths: tuple[int, ...] = SIZE_BINS,
                animation: Animation | None = None) -> list[SizeRow | tuple[int, int]]:
    """Gain over bicubic per face size and upscale, in this run. Each (width, scale) gets a clip of up to two faces of
    ``sources`` (deformed frame by frame by ``animation``, e.g. talking), H.264-compressed at ``crf`` as real
    footage is, enhanced by bicubic (``--sr none``) and by dicface, both scored against a xK render of the scene.
    The faces are those whose photo is at least width x scale px wide (a sharp xK truth) where there are such; else
    the largest photos wider than the clip's face, whose xK truth is their photo enlarged (sharper than the clip,
    not sharp: ``truth_enlarged``). A (width, scale) pair no photo is wider than comes back as that tuple."""
    rows: list[SizeRow | tuple[int, int]] = []
    with tempfile.TemporaryDirectory(prefix="dicface-sizes-") as tmp:
        clip, out = Path(tmp) / "clip.mp4", Path(tmp) / "out.mp4"
        for scale in scales:
            for i, width in enumerate(widths):
                sharp = [f for f in sources if f.head.shape[1] >= width * scale]
                if not sharp:
                    sharp = sorted((f for f in sources if f.head.shape[1] > width), key=lambda f: -f.head.shape[1])
                if not sharp:
                    rows.append((width, scale))
                    continue
                faces = [sharp[(i + k) % len(sharp)] for k in range(min(2, len(sharp)))]
                size = (2 * width + 240, 2 * int(0.75 * (1.3 * width + frames / 2 + 8)))  # even: x264 pads odd
                inputs, _ = face_clip_frames(frames, *size, [width] * len(faces), sources=faces, animation=animation)
                truth, landmarks = face_clip_frames(frames, *size, [width] * len(faces), scale=scale, sources=faces,
                                                    animation=animation)
                write_clip(clip, inputs, audio=False, crf=crf)
                scores, by_member = [], {}
                for sr in (False, True):
                    with open_runner(variant(cfg, upscale=scale), RunMode(sr=sr)) as runner:
                        report = enhance_file(clip, out, runner, LOSSLESS)
                    scores.append(score_video(read_frames(out), truth, landmarks))
                    by_member = report.faces_by_member or by_member
                enlarged = max(1.0, width * scale / min(f.head.shape[1] for f in faces))
                rows.append(SizeRow(width, scale, len(faces), enlarged, scores[0], scores[1], by_member))
    return rows


@dataclass(frozen=True)
class RuntimeRow:
    label: str
    frames: int
    fps: float
    dic_busy_percent: float | None = None  # DIC actors' busy share of the run (Ray rows)
    dic_ms: float | None = None  # DIC actors' busy time per frame (one thread each: about their CPU time)
    other_ms: float | None = None  # this process's CPU time plus the detection actors' busy time, per frame


def bench_runtime(cfg: RunConfig, frames: int = 60, videos: int = 4) -> list[RuntimeRow]:
    """The Ray runtime against the in-process runner, in this run, on generated 640x360 clips of ``frames``:
    one clip in-process and on Ray with one worker per pool (Ray's overhead); a job of ``videos`` clips on Ray
    with 1 and with 2 workers per pool (``runtime.streams`` videos at once); one clip ``videos`` times as long,
    whole and split into ``streams`` parts, with 2 workers per pool. The Ray rows share ``runtime.cpus_per_actor``
    CPUs between the workers of a pool."""
    encode, streams, cpus = cfg.encode, cfg.runtime.streams, cfg.runtime.cpus_per_actor

    def on_ray(workers: int) -> StreamRunner:
        runtime = replace(cfg.runtime, workers=workers, cpus_per_actor=cpus / workers)  # the same CPUs, shared
        return open_runner(replace(cfg, runtime=runtime), runtime="ray")

    rows = []
    with tempfile.TemporaryDirectory(prefix="dicface-bench-") as tmp:
        work = Path(tmp)
        clips = []
        for i in range(videos):
            clips.append(work / f"clip{i}.mp4")
            make_face_clip(clips[-1], count=frames, width=640, height=360, face_widths=BENCH_FACES)
        long_clip = work / "long.mp4"
        scene, _ = face_clip_frames(frames, 640, 360, BENCH_FACES)
        write_clip(long_clip, back_and_forth(scene, videos * frames), gop=30)

        def timed(label: str, runner: StreamRunner, run: Callable[[Path], int]) -> None:
            out = work / label.replace(" ", "_").replace(",", "")
            out.mkdir()
            pools = runner.usage()  # empty in-process
            cpu, start = time.process_time(), time.perf_counter()
            done = run(out)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            if not pools:
                rows.append(RuntimeRow(label, done, done / wall))
                return
            after = runner.usage()
            busy = {name: after[name].busy_seconds - pools[name].busy_seconds for name in after}
            rows.append(RuntimeRow(label, done, done / wall, round(100 * busy["enhance"] / (wall * after[
                "enhance"].actors), 1), 1000 * busy["enhance"] / done, 1000 * (cpu + busy["detect"]) / done))

        def job(sources: list[Path], runner: StreamRunner) -> Callable[[Path], int]:
            def run(out: Path) -> int:
                results = enhance_many(sources, out, runner, encode, streams=streams if len(sources) > 1 else 1)
                failed = [r.error for r in results if r.error]
                if failed:
                    raise RuntimeError(f"benchmark run failed: {failed[0]}")
                return sum(r.report.frames_out for r in results if r.report)
            return run

        def split(runner: StreamRunner, parts: int) -> Callable[[Path], int]:
            return lambda out: enhance_split(long_clip, out / "long.mp4", runner, parts, encode,
                                             streams=parts).frames_out

        with open_runner(cfg) as local:
            timed("in-process, 1 video", local, job(clips[:1], local))
        for workers, label, make_run in (
                (1, "Ray 1 worker, 1 video", lambda r: job(clips[:1], r)),
                (1, f"Ray 1 worker, job of {videos}", lambda r: job(clips, r)),
                (2, f"Ray 2 workers, job of {videos}", lambda r: job(clips, r)),
                (2, f"Ray 2 workers, 1 video x{videos}", lambda r: split(r, 1)),
                (2, f"... in {streams} parts", lambda r: split(r, streams))):
            with on_ray(workers) as runner:
                timed(label, runner, make_run(runner))
    return rows


def pipeline_lines(bench: PipelineBench) -> list[str]:
    """``dicface bench pipeline``'s rows for one clip: frames/s and the ratio to decode+encode (the first row), the
    stages' ms per frame, and DIC in the pipeline against DIC alone."""
    rows = bench.rows
    lines = [f"{row.label:<20} {row.fps:7.2f} frames/s  {row.fps / rows[0].fps:5.2f}x decode+encode  "
             f"faces enhanced {row.report.faces_enhanced}" for row in rows]
    lines += [f"{row.label}, ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in row.report.ms_per_frame().items() if v)
              for row in rows[1:]]
    if bench.dic is not None:
        d = bench.dic
        lines.append(f"DIC in the pipeline {d.pipeline_faces_per_s:.1f} faces/s at {d.batch:.1f} faces per call; "
                     f"alone at that batch {d.alone_faces_per_s:.1f} faces/s: {d.ratio:.2f}x")
    return lines


def quality_lines(rows: list[QualityRow]) -> list[str]:
    """``dicface bench quality``'s methods table: a header and a row per method."""
    lines = [f"{'method':<24} {'PSNR-Y':>7} {'SSIM-Y':>7} {'temporal':>9} {'warp':>7} {'appear.':>7} {'detail':>7} "
             f"{'GMSD':>6} {'identity':>8} faces"]
    for row in rows:
        score = row.score
        lines.append(f"{row.label:<24} {score.psnr:7.2f} {score.ssim:7.4f} {score.temporal:9.3f} "
                     f"{row.temporal.mean('warp') or 0:7.3f} {row.temporal.mean('appearance') or 0:7.3f} "
                     f"{score.detail:7.2f} {score.gmsd:6.3f} {score.identity:8.3f} {row.faces_enhanced}")
    return lines


def size_lines(rows: list[SizeRow | tuple[int, int]]) -> list[str]:
    """``dicface bench quality``'s size table: a header and a row per (face width, upscale), bicubic / dicface."""
    lines = [f"{'face px':>7} {'xK':>3} {'truth':>6} {'bicubic':>8} {'dicface':>8} {'gain dB':>8} {'SSIM +':>7} "
             f"{'temporal b/d':>13} {'detail b/d':>11} {'GMSD b/d':>11} {'identity b/d':>13}  members"]
    for row in rows:
        if not isinstance(row, SizeRow):
            lines.append(f"{row[0]:>7} {row[1]:>3}   (no source photo is larger than the clip's face: no truth)")
            continue
        truth = "sharp" if row.truth_enlarged <= 1 else f"x{row.truth_enlarged:.2f}"
        members = ", ".join(f"{k}: {v}" for k, v in sorted(row.by_member.items())) or "none"
        b, d = row.bicubic, row.dicface
        lines.append(f"{row.width:>7} {row.scale:>3} {truth:>6} {b.psnr:8.2f} {d.psnr:8.2f} {row.gain:+8.2f} "
                     f"{d.ssim - b.ssim:+7.4f} {b.temporal:6.2f}/{d.temporal:6.2f} {b.detail:5.2f}/{d.detail:5.2f} "
                     f"{b.gmsd:5.3f}/{d.gmsd:5.3f} {b.identity:6.3f}/{d.identity:6.3f}  {members}")
    return lines


@dataclass(frozen=True)
class RuntimeSummary:
    """What ``bench_runtime``'s rows say: Ray's overhead on one video (Ray / in-process), a job's gain from a second
    worker per pool and the most it could gain on ``cores`` cores (from the 1-worker run's CPU time per frame:
    no faster than all cores busy with it, nor than 2 DIC actors flat out), and a long video's gain from parts."""

    ray_over_local: float
    two_over_one_worker: float
    two_worker_bound: float
    parts_over_whole: float


def runtime_summary(rows: list[RuntimeRow], cores: int) -> RuntimeSummary:
    """``rows`` in ``bench_runtime``'s order (the Ray rows with their DIC and other CPU times)."""
    one, two = rows[2], rows[3]
    assert one.dic_ms is not None and one.other_ms is not None, "the Ray rows carry their CPU times"
    bound = min(cores / ((one.dic_ms + one.other_ms) / 1000), 2 / (one.dic_ms / 1000)) / one.fps
    return RuntimeSummary(rows[1].fps / rows[0].fps, two.fps / one.fps, bound, rows[5].fps / rows[4].fps)


def runtime_lines(rows: list[RuntimeRow], streams: int, cores: int | None = None) -> list[str]:
    """``dicface bench pipeline --runtime ray``'s rows and summary line."""
    lines = []
    for row in rows:
        cpu = "" if row.dic_ms is None else (f"  DIC busy {row.dic_busy_percent:.0f}%, per frame: DIC {row.dic_ms:.0f} "
                                             f"ms, the rest {row.other_ms:.0f} ms")
        lines.append(f"{row.label:<26} {row.fps:7.2f} frames/s ({row.frames} frames){cpu}")
    cores = cores or os.cpu_count() or 1
    s = runtime_summary(rows, cores)
    lines.append(f"Ray / in-process (1 video): {s.ray_over_local:.2f}x; job with 2 workers / 1 worker: "
                 f"{s.two_over_one_worker:.2f}x (at most {s.two_worker_bound:.2f}x on {cores} cores from the 1-worker "
                 f"run's CPU time per frame); 1 long video in {streams} parts / whole: {s.parts_over_whole:.2f}x")
    return lines
