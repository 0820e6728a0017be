"""Bad and awkward inputs, generated here, each with its expected outcome (issue: hardening).

Failures: a one-line error naming the file and the problem, a documented exit code (2 bad input, 3 weights), no
traceback, nothing left at the output path. Good inputs: frames in = frames out, timestamps and audio kept.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from dicface.models.faces import resize_bicubic
from dicface.pipeline.cli import main
from dicface.pipeline.examples import face_clip_frames, face_source, write_clip
from tests.clips import make_clip

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    """make(folder) -> the input path (or URL) and extra CLI arguments; then the expected exit code and words."""

    make: Callable[[Path], tuple[str, list[str]]]
    code: int
    words: tuple[str, ...] = ()


def _faces(folder: Path, name: str = "faces.mp4", count: int = 8, **kw: object) -> Path:
    frames, _ = face_clip_frames(count, 320, 180, (30, 24))
    write_clip(folder / name, frames, **kw)
    return folder / name


def _encode(path: Path, frames: list[np.ndarray], codec: str, pix_fmt: str) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def _cut(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def _damaged_middle(folder: Path) -> Path:
    clip = _faces(folder, "good.mkv", count=40)
    data = bytearray(clip.read_bytes())
    for offset in range(len(data) // 3, len(data) // 3 + 6000, 61):
        data[offset] ^= 0xFF
    (folder / "damaged.mkv").write_bytes(bytes(data))
    return folder / "damaged.mkv"


def _audio_only(folder: Path) -> Path:
    path = folder / "audio.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000, layout="mono")
        tone = np.zeros((1, 48000), np.float32)
        for start in range(0, 48000, 1024):
            frame = av.AudioFrame.from_ndarray(tone[:, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def _tiny_faces(folder: Path) -> Path:
    head, _ = face_source()
    frame = np.full((360, 640, 3), 90, np.uint8)
    small = resize_bicubic(head, (14, 17))
    for y in range(10, 340, 24):
        for x in range(10, 620, 20):
            frame[y : y + 17, x : x + 14] = small  # 14 rows x 31 columns = 434 faces
    write_clip(folder / "crowd.mp4", [frame] * 2, audio=False)
    return folder / "crowd.mp4"


def _border_faces(folder: Path) -> Path:
    head, _ = face_source()
    big = resize_bicubic(head, (40, 48))
    frame = np.full((180, 320, 3), 100, np.uint8)
    frame[0:30, 0:40] = big[18:48]  # cut by the top edge
    frame[160:180, 290:320] = big[:20, :30]  # cut by the bottom-right corner
    write_clip(folder / "border.mp4", [frame] * 4, audio=False)
    return folder / "border.mp4"


def _frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def _checkpoint(folder: Path, kind: str) -> str:
    path = folder / f"{kind}.pth"
    if kind == "truncated":
        torch.save({"w": torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "corrupt":
        path.write_bytes(bytes(range(256)) * 16)  # not a zip archive, not a pickle
    elif kind == "wrong-architecture":
        torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    elif kind == "pickled-object":
        path.write_bytes(pickle.dumps(_Payload()))
    return str(path)


class _Payload:
    """Unpickling this would create a marker file: the test checks it never appears."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, ("/tmp/dicface-pickle-was-executed",))


def _file(folder: Path, name: str, content: bytes) -> str:
    (folder / name).write_bytes(content)
    return str(folder / name)


def _bad_config(folder: Path) -> str:
    path = folder / "bad.yaml"
    path.write_text("inference:\n  max_batch: 0\n")
    return str(path)


def _read_only_folder(folder: Path) -> Path:
    """A folder on a read-only file system: a tmpfs mounted read-only (root), else a folder without write bits."""
    ro = folder / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o500)
        return ro
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root, and cannot mount a read-only tmpfs ({done.stderr.decode().strip()})")
    return ro  # unmounted by the test


FAILURES = {
    "missing path": Case(lambda d: (str(d / "nope.mp4"), []), 2, ("nope.mp4", "no such file")),
    "empty file": Case(lambda d: (_file(d, "e.mp4", b""), []), 2, ("e.mp4", "empty file")),
    "text named .mp4": Case(lambda d: (_file(d, "t.mp4", b"hello"), []), 2, ("t.mp4", "not a readable video")),
    "random bytes named .mp4": Case(lambda d: (_file(d, "r.mp4", bytes(range(256)) * 64), []), 2,
                                    ("r.mp4", "not an MP4/MOV file: it does not start with an MP4 box")),
    "truncated mp4 (no moov)": Case(
        lambda d: (str(_cut(_faces(d), d / "cut.mp4", 0.5)), []), 2, ("cut.mp4", "moov", "cut before")),
    "audio only": Case(lambda d: (str(_audio_only(d)), []), 2, ("audio.m4a", "no video stream")),
    "corrupt checkpoint": Case(
        lambda d: (str(_faces(d)), ["--weights", _checkpoint(d, "corrupt")]), 3,
        ("corrupt.pth", "not a readable PyTorch weights file")),
    "truncated checkpoint": Case(
        lambda d: (str(_faces(d)), ["--weights", _checkpoint(d, "truncated")]), 3, ("truncated.pth",)),
    "wrong-architecture checkpoint": Case(
        lambda d: (str(_faces(d)), ["--weights", _checkpoint(d, "wrong-architecture")]), 3,
        ("wrong-architecture.pth",)),
    "checkpoint with a pickled object": Case(
        lambda d: (str(_faces(d)), ["--weights", _checkpoint(d, "pickled-object")]), 3, ("refused", "executed")),
    "output in a missing folder": Case(lambda d: (str(_faces(d)), ["-o", str(d / "no" / "out.mp4")]), 2,
                                       ("does not exist",)),
    "output in a read-only folder": Case(
        lambda d: (str(_faces(d)), ["-o", str(_read_only_folder(d) / "out.mp4")]), 5,
        ("ro: cannot write the output (", "choose another -o")),
    "output overwrites the input": Case(lambda d: (str(_faces(d)), ["-o", str(d / "faces.mp4"), "--overwrite"]), 2,
                                        ("overwrite the input",)),
    "unreachable RTSP URL": Case(lambda d: ("rtsp://127.0.0.1:9/cam", []), 2, ("rtsp://127.0.0.1:9/cam",
                                                                                "cannot open the stream")),
    "invalid config value": Case(lambda d: (str(_faces(d)), ["--config", _bad_config(d)]), 2,
                                 ("bad.yaml", "max_batch")),
    "invalid flag value": Case(lambda d: (str(_faces(d)), ["--detect-scale", "100"]), 2, ("--detect-scale",)),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_bad_input_is_a_one_line_error_and_leaves_nothing(
    name: str, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = FAILURES[name]
    try:
        source, extra = case.make(tmp_path)
        out = tmp_path / "out.mp4"
        argv = ["enhance", source, "-o", str(out), "--weights", str(tiny_weights), *extra]
        before = set(tmp_path.rglob("*"))
        assert main(argv) == case.code
        err = capsys.readouterr().err.strip().splitlines()
        message = err[-1]
        assert message.startswith("dicface: error: ") and "Traceback" not in "\n".join(err)
        assert all(word in message for word in case.words), message
        assert set(tmp_path.rglob("*")) == before  # no output, no temporary file
        assert not Path("/tmp/dicface-pickle-was-executed").exists()
    finally:
        for mount in (p for p in tmp_path.iterdir() if p.is_mount()):
            subprocess.run(["umount", str(mount)], check=False)


def _clip(folder: Path, name: str, **kw: object) -> Path:
    make_clip(folder / name, **kw)
    return folder / name


def _large(folder: Path) -> Path:
    frame = resize_bicubic(face_clip_frames(1, 320, 180, (30,))[0][0], (4000, 2250))
    write_clip(folder / "large.mp4", [frame] * 2, audio=False)
    return folder / "large.mp4"


def _check_frames_and_times(src: Path, out: Path, report: dict) -> None:
    """Same frames at the same times. Matroska may start the timeline later (AAC priming shifts it, as ffmpeg
    does), so the times are compared from the first frame."""
    a, b = _frames(src), _frames(out)
    assert len(a) == len(b) == report["frames_in"] == report["frames_out"]
    assert [float(f.time - a[0].time) for f in a] == pytest.approx([float(f.time - b[0].time) for f in b], abs=1e-3)


def _check_decodable_part(src: Path, out: Path, report: dict) -> None:
    assert report["frames_in"] == report["frames_out"] == len(_frames(out)) > 0


def _check_odd_size(src: Path, out: Path, report: dict) -> None:
    _check_frames_and_times(src, out, report)
    assert (_frames(out)[0].width, _frames(out)[0].height) == (322, 182)  # padded by one edge pixel


def _check_no_faces(src: Path, out: Path, report: dict) -> None:
    _check_frames_and_times(src, out, report)
    assert report["faces_enhanced"] == 0


def _check_crowd(src: Path, out: Path, report: dict) -> None:
    _check_frames_and_times(src, out, report)
    assert report["tracks"] > 300 and report["faces_enhanced"] > 300  # of 434


GOOD: dict[str, tuple[Callable[[Path], Path], Callable[[Path, Path, dict], None]]] = {
    "damaged packets mid-stream": (_damaged_middle, _check_decodable_part),
    "truncated mid-stream (mkv)": (lambda d: _cut(_faces(d, "whole.mkv", count=40), d / "cut.mkv", 0.6),
                                   _check_decodable_part),
    "odd width and height": (lambda d: _clip(d, "odd.mp4", count=5, width=321, height=181), _check_odd_size),
    "rotated phone video": (lambda d: _clip(d, "rot.mp4", count=4, rotation=90), _check_frames_and_times),
    "variable frame rate": (lambda d: _clip(d, "vfr.mp4", count=5, pts=[0, 1, 3, 4, 8]), _check_frames_and_times),
    "10-bit H.264": (lambda d: _encode(d / "x10.mkv", face_clip_frames(6, 320, 180, (30,))[0], "libx264",
                                       "yuv420p10le"), _check_frames_and_times),
    "yuv444 H.264": (lambda d: _encode(d / "x444.mkv", face_clip_frames(6, 320, 180, (30,))[0], "libx264",
                                       "yuv444p"), _check_frames_and_times),
    "very large frames (4000x2250)": (_large, _check_frames_and_times),
    "zero faces": (lambda d: _clip(d, "none.mp4", count=6), _check_no_faces),
    "faces cut by the frame border": (_border_faces, _check_frames_and_times),
    "hundreds of tiny faces in one frame": (_tiny_faces, _check_crowd),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_awkward_input_is_processed(name: str, tmp_path: Path, tiny_weights: Path) -> None:
    make, check = GOOD[name]
    source = make(tmp_path)
    out, report = tmp_path / "out.mkv", tmp_path / "report.json"
    assert main(["enhance", str(source), "-o", str(out), "--weights", str(tiny_weights),
                 "--report", str(report)]) == 0
    check(source, out, json.loads(report.read_text()))


def test_a_failing_video_in_a_job_does_not_stop_the_others(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    _faces(folder, "a.mp4", count=4)
    _file(folder, "b.mp4", b"not a video")
    _faces(folder, "c.mkv", count=4)
    out, report = tmp_path / "out", tmp_path / "job.json"
    assert main(["enhance", str(folder), "-o", str(out), "--weights", str(tiny_weights), "--report",
                 str(report)]) == 1
    printed = capsys.readouterr().out
    assert "b.mp4  FAILED" in printed and "not a readable video" in printed and "2/3 videos done" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "c.mkv"]
    rows = {Path(r["input"]).name: r for r in json.loads(report.read_text())["videos"]}
    assert rows["a.mp4"]["frames_out"] == 4 and rows["b.mp4"]["error"] and rows["c.mkv"]["frames_out"] == 4
    assert main(["enhance", str(folder / "*.mkv"), "-o", str(tmp_path / "glob"), "--weights",
                 str(tiny_weights)]) == 0  # a quoted glob is a job too
    assert [p.name for p in (tmp_path / "glob").iterdir()] == ["c.mkv"]
