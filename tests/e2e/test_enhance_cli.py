"""``dicface enhance`` on a generated clip of real faces moving with known motion (slow: seconds to a minute)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from dicface.models.dic import DIC
from dicface.pipeline.bench import QUALITY_METHODS
from dicface.pipeline.cli import main
from tests.clips import make_face_clip
from tests.conftest import TINY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("clip") / "faces.mp4"
    return path, make_face_clip(path, count=16)


def _times_and_audio(path: Path) -> tuple[list[float], list[bytes]]:
    with av.open(str(path)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [bytes(p) for p in c.demux(audio=0) if p.dts is not None]
    return times, audio


def test_enhance_keeps_frames_timestamps_audio_and_reports(
    clip: tuple[Path, np.ndarray], tmp_path: Path, tiny_weights: Path
) -> None:
    src, truth = clip
    out, report, tracks = tmp_path / "out.mp4", tmp_path / "report.json", tmp_path / "tracks.jsonl"
    argv = ["enhance", str(src), "-o", str(out), "--weights", str(tiny_weights), "--report", str(report),
            "--tracks", str(tracks), "--window", "4", "--max-face", "64",
            "--max-reduction", "4"]  # the tiny x8 model alone: force the 26-33-px crops through it
    assert main(argv) == 0
    times_in, audio_in = _times_and_audio(src)
    times_out, audio_out = _times_and_audio(out)
    assert len(times_out) == len(times_in) == 16 and times_out == pytest.approx(times_in, abs=1e-3)
    assert audio_out == audio_in
    data = json.loads(report.read_text())
    assert data["frames_in"] == data["frames_out"] == 16
    assert data["tracks"] == 2 and data["faces_enhanced"] >= 2 * 15
    assert set(data["ms_per_frame"]) == {"decode", "detect", "track", "align", "enhance", "fuse", "blend", "encode",
                                         "measure"}
    temporal = data["temporal"]  # the ground-truth-free measures of every --report
    assert temporal["face_pairs"] >= 2 * 14 and temporal["warping_error"] > 0 and temporal["landmark_jitter"] > 0
    assert data["scene_cuts"] == 0
    lines = [json.loads(line) for line in tracks.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(16))
    ids = {t["id"] for line in lines for t in line["tracks"] if t["confirmed"]}
    assert ids == {1, 2}  # stable through the clip (a tentative track of a weak detection may come and go)
    last = {t["id"]: np.array(t["landmarks"]) for t in lines[-1]["tracks"]}
    errors = sorted(min(np.abs(pts - truth[-1, k]).mean() for k in range(2)) for pts in last.values())
    assert errors[-1] < 3.0  # tracked landmarks follow the true motion (px, ~30-px faces)


def test_a_report_without_temporal_measures_costs_nothing_for_them(
    clip: tuple[Path, np.ndarray], tmp_path: Path, tiny_weights: Path
) -> None:
    report = tmp_path / "report.json"
    argv = ["enhance", str(clip[0]), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights), "--report",
            str(report), "--temporal", "off"]
    assert main(argv) == 0
    data = json.loads(report.read_text())
    assert data["temporal"] is None and data["ms_per_frame"]["measure"] == 0 and data["frames_out"] == 16


FORCED = ["--max-face", "64", "--max-reduction", "4"]  # the tiny x8 model alone: force the 26-33-px crops through


def _run(clip: Path, out: Path, weights: Path, *flags: str) -> tuple[dict, list[np.ndarray], av.VideoFrame]:
    """The run's report, its output frames (RGB) and its first frame (stream properties)."""
    report = out.with_suffix(".json")
    assert main(["enhance", str(clip), "-o", str(out), "--weights", str(weights), "--report", str(report),
                 "--tracks", str(out.with_suffix(".jsonl")), *flags]) == 0
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    return json.loads(report.read_text()), [f.to_ndarray(format="rgb24") for f in frames], frames[0]


@pytest.fixture(scope="module")
def baseline(clip: tuple[Path, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The tiny weights file, and the report, frames and first frame of a run with them and FORCED alone."""
    folder = tmp_path_factory.mktemp("baseline")
    weights = folder / "tiny.pth"
    torch.manual_seed(0)
    torch.save({"state_dict": DIC(TINY).state_dict()}, weights)
    return (weights, *_run(clip[0], folder / "out.mp4", weights, *FORCED))


def _differs(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# Each enhance flag against the baseline run (the same clip, default flags but FORCED): what it must change.
FLAG_EFFECTS = {
    "--sr none": (["--sr", "none"], lambda r, f, b: r["faces_enhanced"] == r["dic_calls"] == 0 < b[0]["dic_calls"]),
    "--window": (["--window", "2"], lambda r, f, b: r["dic_calls"] > 2 * b[0]["dic_calls"]),
    "--detect-every": (["--detect-every", "1", "--detect-gate", "off"],
                       lambda r, f, b: r["full_searches"] == 16 > b[0]["full_searches"]),
    "--detect-gate": (["--detect-every", "2", "--detect-gate", "on"],  # off: 8 full searches (every 2nd frame)
                      lambda r, f, b: r["narrowed_searches"] > 0 and r["full_searches"] < 8),
    "--min-face": (["--min-face", "60"], lambda r, f, b: r["faces_enhanced"] == 0 < b[0]["faces_enhanced"]),
    "--max-face": (["--max-face", "9"], lambda r, f, b: r["faces_enhanced"] == 0),
    "--max-reduction": (["--max-reduction", "1.0", "--max-face", "64"], lambda r, f, b: r["faces_enhanced"] == 0),
    "--upscale": (["--upscale", "2"], lambda r, f, b: (f[0].shape[1], f[0].shape[0]) == (1280, 720)),
    "--preview": (["--preview", "side-by-side"], lambda r, f, b: f[0].shape[1] == 2 * 640),
    "--fusion": (["--fusion", "0"], lambda r, f, b: _differs(f, b[1])),
    "--seed": (["--seed", "none"], lambda r, f, b: _differs(f, b[1])),
    "--steps": (["--steps", "1"], lambda r, f, b: _differs(f, b[1])),
    "--detector": (["--detector", "dlib"], lambda r, f, b: r["tracks"] != b[0]["tracks"] or
                   r["faces_enhanced"] != b[0]["faces_enhanced"]),
    "--detect-scale": (["--detect-scale", "0.5"], lambda r, f, b: r["faces_enhanced"] < b[0]["faces_enhanced"]),
    "--crf": (["--crf", "40"], lambda r, f, b: _differs(f, b[1])),
}


@pytest.mark.parametrize("name", FLAG_EFFECTS)
def test_each_enhance_flag_changes_what_it_should(clip: tuple[Path, np.ndarray], tmp_path: Path, baseline: tuple,
                                                  name: str) -> None:
    flags, changed = FLAG_EFFECTS[name]
    report, frames, _ = _run(clip[0], tmp_path / "out.mp4", baseline[0], *FORCED, *flags)
    keys = ("faces_enhanced", "dic_calls", "full_searches", "narrowed_searches", "tracks")
    assert len(frames) == 16 and changed(report, frames, baseline[1:]), \
        {k: (report[k], baseline[1][k]) for k in keys}


def test_encoder_flags_reach_the_output(clip: tuple[Path, np.ndarray], tmp_path: Path, baseline: tuple) -> None:
    _, _, first = _run(clip[0], tmp_path / "out.mkv", baseline[0], "--sr", "none", "--codec", "libx265",
                       "--preset", "ultrafast", "--pix-fmt", "yuv444p")
    assert first.format.name == "yuv444p"
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
    assert baseline[3].format.name == "yuv420p"


def test_output_mistakes_are_refused(clip: tuple[Path, np.ndarray], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = clip[0]
    assert main(["enhance", str(src), "-o", str(src), "--sr", "none"]) == 2
    assert "overwrite the input" in capsys.readouterr().err
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"x")
    assert main(["enhance", str(src), "-o", str(existing), "--sr", "none"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["enhance", str(src), "-o", str(tmp_path / "no" / "dir.mp4"), "--sr", "none"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert existing.read_bytes() == b"x"
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--split", "2", "--runtime", "local"]) == 2
    assert "add --runtime ray" in capsys.readouterr().err
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.avi"), "--split", "2", "--runtime", "ray"]) == 2
    assert "cannot be split" in capsys.readouterr().err


def test_demo_runs_the_whole_video_path(tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--weights", str(tiny_weights)]) == 0
    with av.open(str(out / "enhanced.mp4")) as c:
        frames = list(c.decode(video=0))
        assert c.streams.audio  # the example's audio is kept
    assert len(frames) == 48 and (frames[0].width, frames[0].height) == (4 * 480, 4 * 270)
    assert (out / "video_comparison.png").is_file()


def test_bench_pipeline_prints_ratios_to_decode_encode(
    clip: tuple[Path, np.ndarray], tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "pipeline", str(clip[0]), "--weights", str(tiny_weights), "--preset", "ultrafast",
                 "--max-reduction", "4"]) == 0
    out = capsys.readouterr().out
    for label in ("decode+encode", "enhance --sr none", "enhance "):
        assert label in out
    assert out.count("x decode+encode") == 3 and out.count("ms/frame") == 2
    assert "DIC in the pipeline" in out and "faces per call" in out


def test_bench_quality_scores_each_method(tiny_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "quality", "--weights", str(tiny_weights), "--frames", "6", "--motion", "talking"]) == 0
    out = capsys.readouterr().out
    assert "astronaut faces talking" in out
    assert "PSNR-Y" in out and "temporal" in out and "warp" in out
    assert all(label in out for label, *_ in QUALITY_METHODS)


def test_eval_video_measures_an_output_against_its_input(
    clip: tuple[Path, np.ndarray], tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, tracks = tmp_path / "out.mp4", tmp_path / "tracks.jsonl"
    assert main(["enhance", str(clip[0]), "-o", str(out), "--weights", str(tiny_weights), "--upscale", "2",
                 "--tracks", str(tracks), "--max-face", "64", "--max-reduction", "4"]) == 0
    capsys.readouterr()
    plot, report = tmp_path / "plot.png", tmp_path / "eval.json"
    assert main(["eval-video", str(clip[0]), str(out), "--plot", str(plot), "--json", str(report)]) == 0
    table = capsys.readouterr().out
    assert "warp out/bicubic" in table and table.count("\n") >= 4  # header, two tracks, all, legend
    data = json.loads(report.read_text())
    assert data["face_pairs"] >= 2 * 14 and len(data["tracks"]) == 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval-video", str(clip[0]), str(out), "--tracks", str(tracks), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["face_pairs"] == data["face_pairs"]  # the run's own tracks, same faces
    assert main(["eval-video", str(clip[0]), str(tracks)]) == 2  # not a video
