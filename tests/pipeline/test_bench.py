"""The benchmarks' arithmetic on known inputs (``pipeline.bench``, ``models.bench``): the numbers they print."""

from __future__ import annotations

import pytest

from dicface.configs.schema import RunConfig
from dicface.models.bench import ModelBenchResult, PathSpeed, model_lines
from dicface.pipeline.bench import (
    DicRate,
    PipelineBench,
    RuntimeRow,
    SizeRow,
    ThroughputRow,
    pipeline_lines,
    runtime_lines,
    runtime_summary,
    size_lines,
    variant,
)
from dicface.pipeline.quality import VideoScore
from dicface.pipeline.report import RunReport

RUNTIME_ROWS = [
    RuntimeRow("in-process, 1 video", 60, 10.0),
    RuntimeRow("Ray 1 worker, 1 video", 60, 8.0, 50.0, 40.0, 60.0),
    RuntimeRow("Ray 1 worker, job of 4", 240, 8.0, 60.0, 40.0, 60.0),
    RuntimeRow("Ray 2 workers, job of 4", 240, 12.0, 45.0, 40.0, 60.0),
    RuntimeRow("Ray 2 workers, 1 video x4", 240, 9.0, 50.0, 40.0, 60.0),
    RuntimeRow("... in 2 parts", 240, 13.5, 60.0, 40.0, 60.0),
]


def test_runtime_summary() -> None:
    s = runtime_summary(RUNTIME_ROWS, cores=2)
    assert s.ray_over_local == pytest.approx(0.8) and s.two_over_one_worker == pytest.approx(1.5)
    assert s.parts_over_whole == pytest.approx(1.5)
    # the 1-worker job: 100 ms of CPU per frame -> 2 cores give at most 20 frames/s; 2 DIC actors at 40 ms a frame
    # at most 50; against its 8 frames/s: 2.5x
    assert s.two_worker_bound == pytest.approx(2.5)
    assert runtime_summary(RUNTIME_ROWS, cores=8).two_worker_bound == pytest.approx(50 / 8)  # the DIC actors bound it
    line = runtime_lines(RUNTIME_ROWS, streams=2, cores=2)[-1]
    assert "0.80x" in line and "1.50x (at most 2.50x on 2 cores" in line and "2 parts / whole: 1.50x" in line


def _row(label: str, fps: float, faces: int = 0, seconds: dict[str, float] | None = None) -> ThroughputRow:
    report = RunReport(frames_in=100, frames_out=100, faces_enhanced=faces)
    report.seconds.update(seconds or {})
    return ThroughputRow(label, report, fps)


def test_pipeline_rows_are_ratios_to_decode_encode() -> None:
    bench = PipelineBench((1280, 720), (18, 20, 22), [_row("decode+encode", 40.0), _row("enhance --sr none", 34.0),
                                        _row("enhance", 10.0, 300, {"enhance": 3.0, "detect": 1.5})],
                          DicRate(batch=24.0, pipeline_faces_per_s=100.0, alone_faces_per_s=125.0))
    lines = pipeline_lines(bench)
    assert [line.split("frames/s")[1].split("x")[0].strip() for line in lines[:3]] == ["1.00", "0.85", "0.25"]
    assert lines[4] == "enhance, ms/frame: detect 15.0, enhance 30.0"  # seconds / frames_in
    assert lines[-1].endswith("alone at that batch 125.0 faces/s: 0.80x") and "at 24.0 faces per call" in lines[-1]


def test_model_lines_give_each_path_over_the_plain_one() -> None:
    result = ModelBenchResult("cpu", 2, 16, 3, (PathSpeed("plain (torch, no_grad, fp32)", 20.0, 0.0),
                                                PathSpeed("fast (openvino, bf16)", 90.0, 2e-3)))
    lines = model_lines(result, "m (x4)", 32, 128, 1_653_601, "AVX512_BF16, no AMX")
    assert lines[0] == "model: m (x4), 32 -> 128 px, 1,653,601 parameters" and "(AVX512_BF16, no AMX)" in lines[1]
    assert "4.50x" in lines[-1] and lines[-1].endswith("2.00e-03") and result.speedup == pytest.approx(4.5)


def test_a_variant_changes_only_the_settings_given() -> None:
    cfg = RunConfig()
    v = variant(cfg, seed="none", fusion=0.0, upscale=4)
    assert (v.enhance.seed, v.enhance.fusion.weight, v.enhance.upscale) == ("none", 0.0, 4)
    assert v.enhance.fusion.frames == cfg.enhance.fusion.frames and v.enhance.feedback == cfg.enhance.feedback
    assert v.detect == cfg.detect and variant(cfg) == cfg


def test_size_lines_say_how_sharp_each_truth_is() -> None:
    bicubic, dicface = VideoScore(30.0, 0.90, 2.0, 0.5, 0.1, 0.5), VideoScore(30.6, 0.92, 1.5, 0.6, 0.09, 0.45)
    rows = [SizeRow(48, 2, 2, 1.0, bicubic, dicface, {"x2": 20}),
            SizeRow(128, 2, 1, 1.28, bicubic, dicface, {"x2/192": 10, "x2": 2}),
            (256, 2)]
    header, sharp, enlarged, none = size_lines(rows)
    assert "truth" in header and " sharp " in sharp and "+0.60" in sharp and "x2: 20" in sharp
    assert " x1.28 " in enlarged and "x2: 2, x2/192: 10" in enlarged
    assert none.split()[:2] == ["256", "2"] and "no truth" in none


def test_a_reports_line_names_the_members_by_scale() -> None:
    report = RunReport(frames_in=10, frames_out=10, faces_enhanced=9,
                       faces_by_member={"x2/192": 2, "x4": 3, "x2": 4}, tracks=3)
    assert "(x4 3, x2 4, x2/192 2)" in report.line()
