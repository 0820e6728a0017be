"""Splitting a long file at keyframes: the plan covers every frame once, the parts' warm-up makes the joined video
match a whole run, and the join keeps every frame, timestamp and audio packet."""

from __future__ import annotations

import itertools
import json
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dicface.configs.schema import EnhanceConfig, RunConfig
from dicface.configs.video import DetectConfig, EncodeOptions
from dicface.pipeline.examples import make_face_clip, write_clip
from dicface.pipeline.job import Stopped, enhance_file, enhance_split, run_threads
from dicface.pipeline.report import RunReport, merge_reports
from dicface.pipeline.runtime.build import open_runner
from dicface.pipeline.runtime.plan import RunMode
from dicface.pipeline.runtime.sequencer import StreamRunner
from dicface.pipeline.segments import OVERLAP_FRAMES, Timeline, join_videos, plan_segments, probe_timeline
from dicface.pipeline.sink import VideoSink
from dicface.pipeline.source import FileSource
from tests.clips import make_two_angle_clip, panning_frames

LOSSLESS = EncodeOptions(crf=0, preset="ultrafast")


def _timeline(count: int, gop: int) -> Timeline:
    return Timeline(tuple(range(0, 2 * count, 2)), tuple(range(0, 2 * count, 2 * gop)), Fraction(1, 50))


@pytest.mark.parametrize(("count", "gop", "parts"), [(1000, 25, 4), (1000, 250, 4), (300, 7, 3), (1000, 1, 7)])
def test_the_plan_covers_every_frame_once_and_starts_at_keyframes(count: int, gop: int, parts: int) -> None:
    timeline = _timeline(count, gop)
    segments = plan_segments(timeline, parts)
    assert segments[0].start == 0 and segments[-1].stop == count
    assert all(a.stop == b.start for a, b in itertools.pairwise(segments))
    assert 1 < len(segments) <= parts
    for s in segments[1:]:
        assert s.warmup == OVERLAP_FRAMES and s.span.first_index == s.start - s.warmup
        assert s.span.seek_pts in timeline.keyframes and s.span.seek_pts == timeline.pts[s.span.first_index]
        assert s.span.first_output == s.start and s.stop - s.start >= OVERLAP_FRAMES
    assert all(s.span.stop_pts == timeline.pts[s.stop] for s in segments[:-1]) and segments[-1].span.stop_pts is None
    sizes = [s.stop - s.start for s in segments]
    assert max(sizes) - min(sizes) <= max(gop, OVERLAP_FRAMES) + count // parts  # about equal


def test_a_part_decodes_the_fusions_lookahead_past_its_end_without_writing_it() -> None:
    timeline = _timeline(120, 10)
    segments = plan_segments(timeline, 3, tail=4)
    assert [s.start for s in segments] == [s.start for s in plan_segments(timeline, 3)]
    for s in segments[:-1]:
        assert s.span.stop_pts == timeline.pts[s.stop + 4] and s.span.stop_output == s.stop
    assert segments[-1].span.stop_pts is None and segments[-1].span.stop_output is None


def test_a_short_file_or_one_without_keyframes_is_not_cut() -> None:
    assert len(plan_segments(_timeline(40, 5), 4)) == 1
    assert len(plan_segments(_timeline(1000, 5000), 4)) == 1  # one keyframe, at the start


def _runner(sr: bool) -> StreamRunner:
    cfg = RunConfig(detect=DetectConfig(every=5), enhance=EnhanceConfig(window=4))
    return open_runner(cfg, RunMode(sr=sr, tracks=True))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def _decode(path: Path) -> list:
    with FileSource(path) as source:
        return list(source)


def _audio(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size]


def test_a_split_run_matches_a_whole_run(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    make_face_clip(clip, count=64, width=320, height=180, face_widths=(16, 20), gop=16)
    runner = _runner(sr=True)
    whole = enhance_file(clip, tmp_path / "whole.mp4", runner, LOSSLESS, tmp_path / "whole.jsonl")
    split = enhance_split(clip, tmp_path / "split.mp4", runner, 2, LOSSLESS, tmp_path / "split.jsonl")
    boundary = plan_segments(probe_timeline(clip), 2)[1].start
    source, a, b = _decode(clip), _decode(tmp_path / "whole.mp4"), _decode(tmp_path / "split.mp4")
    assert len(b) == len(source) == 64 and split.frames_in == split.frames_out == 64
    assert [f.pts * f.time_base for f in b] == [f.pts * f.time_base for f in source]
    assert _audio(tmp_path / "split.mp4") == _audio(clip)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a[:boundary], b[:boundary], strict=True))
    assert min(_psnr(x.image, y.image) for x, y in zip(a, b, strict=True)) > 45
    assert split.faces_enhanced == whole.faces_enhanced and split.tracks == whole.tracks == 2
    lines_a = [json.loads(line) for line in (tmp_path / "whole.jsonl").read_text().splitlines()]
    lines_b = [json.loads(line) for line in (tmp_path / "split.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines_b] == list(range(64))
    for ra, rb in zip(lines_a, lines_b, strict=True):  # the ids run on across the boundary; landmarks agree
        assert [t["id"] for t in ra["tracks"]] == [t["id"] for t in rb["tracks"]]
        for ta, tb in zip(ra["tracks"], rb["tracks"], strict=True):
            assert np.abs(np.array(ta["landmarks"]) - np.array(tb["landmarks"])).max() < 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "split.jsonl", "split.mp4", "whole.jsonl",
                                                          "whole.mp4"]  # the parts are gone


def test_the_streams_a_split_file_does_not_carry_are_named(tmp_path: Path) -> None:
    src, part = tmp_path / "in.mov", tmp_path / "part0.mp4"
    make_two_angle_clip(src)
    with FileSource(src) as source, VideoSink(part, source.info, options=LOSSLESS) as sink:
        for frame in source:
            sink.write(frame)
    assert join_videos([part], src, tmp_path / "out.mp4") == ["video stream #1 (mjpeg)"]  # not the timecode track
    with av.open(str(tmp_path / "out.mp4")) as joined:
        assert [s.metadata.get("timecode") for s in joined.streams] == ["01:02:03:04", "01:02:03:04"]
    reports = [RunReport(dropped_streams=["a"]), RunReport(dropped_streams=["a", "b"])]
    assert merge_reports(reports).dropped_streams == ["a", "b"]  # the parts' names, each once


def test_variable_frame_rate_and_rotation_into_matroska(tmp_path: Path) -> None:
    clip = tmp_path / "vfr.mp4"
    steps = np.random.default_rng(0).integers(1, 4, 80)
    write_clip(clip, panning_frames(80, 160, 96), pts=list(np.cumsum(steps) - steps[0]), gop=10, rotation=90)
    assert len(plan_segments(probe_timeline(clip), 3)) > 1
    report = enhance_split(clip, tmp_path / "out.mkv", _runner(sr=False), 3, LOSSLESS)
    source, out = _decode(clip), _decode(tmp_path / "out.mkv")
    assert report.frames_out == len(out) == len(source) == 80
    # From the first frame: Matroska shifts the whole timeline when the AAC has priming samples (as ffmpeg does).
    assert [(f.pts - out[0].pts) * f.time_base for f in out] == [(f.pts - source[0].pts) * f.time_base for f in source]
    assert len(_audio(tmp_path / "out.mkv")) == len(_audio(clip))
    with FileSource(tmp_path / "out.mkv") as joined:
        assert joined.info.rotation == 90  # the display rotation of a phone video is kept


def test_a_failing_thread_stops_the_others_at_their_next_report() -> None:
    """A failed part (or Ctrl-C) must not wait for the other parts or videos to run to their end."""
    stop = threading.Event()
    reports = []

    def work(i: int) -> int:
        if i == 0:
            time.sleep(0.2)
            raise RuntimeError("part 0 failed")
        for n in range(1000):  # a long part, reporting progress every 10 ms
            if stop.is_set():
                raise Stopped
            reports.append(n)
            time.sleep(0.01)
        return i

    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="part 0 failed"):
        run_threads(work, 4, 2, stop)
    assert time.perf_counter() - start < 2 and len(reports) < 100  # parts 2 and 3 never started
