"""Faults a user meets: SIGTERM mid-run, files a SIGKILL left behind, a full disk, a stream that changes size.

Each ends in complete output or a one-line error with its documented exit code, and nothing half-written is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest

from dicface.pipeline.cli import main
from dicface.pipeline.examples import back_and_forth, write_clip
from tests.clips import make_clip, panning_frames

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _everything(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (Ray's GCS, raylet, agents and workers for a Ray run)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has ended)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.mark.parametrize("repeat", [False, True], ids=["SIGTERM", "SIGTERM every 20 ms"])
@pytest.mark.parametrize("runtime", ["local", "ray"])
def test_sigterm_mid_run_is_a_clean_stop(tmp_path: Path, tiny_weights: Path, runtime: str, repeat: bool) -> None:
    """Both runtimes end rc 143 with the same line, also when SIGTERMs keep coming during the clean-up (a service
    manager that repeats itself), and leave no output, no temporary file and no process (Ray's included) behind."""
    clip = tmp_path / "clip.mp4"
    write_clip(clip, back_and_forth(panning_frames(60, 320, 180), 400))
    out, tracks = tmp_path / "out" / "out.mp4", tmp_path / "out" / "tracks.jsonl"
    out.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.Popen(
        [sys.executable, "-m", "dicface.pipeline.cli", "enhance", str(clip), "-o", str(out), "--tracks", str(tracks),
         "--weights", str(tiny_weights), "--runtime", runtime, "--workers", "1", "--preset", "ultrafast"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    _wait_for_encoding(run, out.parent)
    time.sleep(0.5)
    helpers = _descendants(run.pid)
    run.send_signal(signal.SIGTERM)
    while repeat and run.poll() is None:
        time.sleep(0.02)
        run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 143, err
    assert err.strip().splitlines()[-1] == "dicface: terminated (SIGTERM); unfinished outputs removed"
    assert "Traceback" not in err
    assert _everything(out.parent) == set()  # no output, no .part file
    deadline = time.monotonic() + 5
    while _alive(helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(helpers), [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in _alive(helpers)]


def _enhance(clip: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """``dicface enhance`` in a process of its own (SR off: the output path is what is under test)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dicface.pipeline.cli", "enhance", str(clip), "-o", str(out), "--sr", "none",
         "--runtime", "local", "--preset", "ultrafast", *extra],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)


def _wait_for_encoding(run: subprocess.Popen[str], folder: Path) -> None:
    deadline = time.monotonic() + 120
    while not any(".part" in name for name in _everything(folder)):
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read() if run.stderr else ""
        time.sleep(0.02)


@pytest.mark.parametrize("overwrite", [False, True], ids=["kept", "--overwrite"])
def test_a_file_created_at_the_output_during_a_run_is_never_clobbered(tmp_path: Path, overwrite: bool) -> None:
    """Without --overwrite, the run's final rename does not replace a file that appeared meanwhile: it fails with
    one line naming the path (rc 2) and the other file stays; with it, the replace is atomic."""
    clip = tmp_path / "clip.mp4"
    write_clip(clip, back_and_forth(panning_frames(30, 320, 180), 240), audio=False)
    out = tmp_path / "out" / "same.mp4"
    out.parent.mkdir()
    run = _enhance(clip, out, *(["--overwrite"] if overwrite else []))
    _wait_for_encoding(run, out.parent)
    out.write_bytes(b"another program's file")
    _, err = run.communicate(timeout=120)
    if overwrite:
        assert run.returncode == 0, err
        with av.open(str(out)) as video:
            assert sum(1 for _ in video.decode(video=0)) == 240
    else:
        assert run.returncode == 2, err
        assert err.strip().splitlines()[-1] == (
            f"dicface: error: {out} appeared while this run was writing it (another run?): it is kept and this "
            f"run's output dropped; pass --overwrite to replace it")
        assert out.read_bytes() == b"another program's file"
    assert _everything(out.parent) == {"same.mp4"}  # no temporary file left


def test_two_runs_writing_one_output_at_once_leave_one_whole_video(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_clip(clip, back_and_forth(panning_frames(30, 320, 180), 120), audio=False)
    out = tmp_path / "out" / "same.mp4"
    out.parent.mkdir()
    runs = [_enhance(clip, out) for _ in range(2)]
    errors = [run.communicate(timeout=180)[1] for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 2], errors
    loser = errors[[run.returncode for run in runs].index(2)].strip().splitlines()[-1]
    assert loser.startswith(f"dicface: error: {out} ") and "--overwrite" in loser
    assert _everything(out.parent) == {"same.mp4"}
    with av.open(str(out)) as video:
        assert sum(1 for _ in video.decode(video=0)) == 120


def test_a_job_ignores_what_a_killed_run_left_behind(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    make_clip(folder / "a.mp4", count=4, width=160, height=96)
    (folder / ".b.k2j3x8.part.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom half-written")  # no moov box
    out = tmp_path / "out"
    assert main(["enhance", str(folder), "-o", str(out), "--weights", str(tiny_weights), "--runtime", "local"]) == 0
    assert [p.name for p in out.iterdir()] == ["a.mp4"]
    err = capsys.readouterr().err
    assert "1 unfinished temporary file(s)" in err and ".b.k2j3x8.part.mp4" in err
    assert main(["enhance", str(folder / "*.mp4"), "-o", str(tmp_path / "glob"), "--weights", str(tiny_weights),
                 "--runtime", "local"]) == 0
    assert [p.name for p in (tmp_path / "glob").iterdir()] == ["a.mp4"]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256-KiB tmpfs: a video or a long tracks file cannot fit. Needs root and mount (skips otherwise)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("what", ["video", "tracks", "report", "png"])
def test_a_full_disk_is_a_one_line_error_and_leaves_nothing(
    tmp_path: Path, tiny_weights: Path, full_disk: Path, capsys: pytest.CaptureFixture[str], what: str,
    real_faces: list[np.ndarray]
) -> None:
    clip = tmp_path / "clip.mp4"
    make_clip(clip, count=40, width=320, height=180)
    (full_disk / "filler").write_bytes(os.urandom(200 * 1024))  # 56 KiB left
    common = ["--weights", str(tiny_weights), "--runtime", "local", "--crf", "0", "--preset", "ultrafast"]
    if what == "video":
        argv = ["enhance", str(clip), "-o", str(full_disk / "out.mp4"), *common]
    elif what == "tracks":
        argv = ["enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--tracks", str(full_disk / "t.jsonl"),
                "--sr", "none", *common]
        (full_disk / "filler2").write_bytes(os.urandom(52 * 1024))  # a few KiB left: the tracks need more
    elif what == "report":
        (full_disk / "filler2").write_bytes(os.urandom(56 * 1024 - 512))
        argv = ["enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--report", str(full_disk / "r.json"),
                *common]
    else:
        from dicface.models.imageio import write_png

        faces = tmp_path / "faces"
        faces.mkdir()
        for i in range(12):
            write_png(real_faces[0], faces / f"f{i}.png")
        argv = ["sr", str(faces), "-o", str(full_disk / "sr"), "--weights", str(tiny_weights), "--landmarks"]
    before = _everything(full_disk)
    assert main(argv) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dicface: error: ") and "No space left on device" in err[-1]
    assert str(full_disk) in err[-1] and "Traceback" not in "\n".join(err)
    assert not any(".part" in name for name in _everything(full_disk) - before)
    assert not (tmp_path / "out.mp4").exists() or what == "report"


def _ts_segment(path: Path, frames: list[np.ndarray], start: int) -> None:
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 25)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = start + i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def test_a_stream_that_changes_resolution_and_restarts_its_clock_is_kept_whole(tmp_path: Path, tiny_weights: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    large, small = panning_frames(12, 320, 180), [f[::2, ::2].copy() for f in panning_frames(10, 320, 180)]
    _ts_segment(tmp_path / "a.ts", large, 0)
    _ts_segment(tmp_path / "b.ts", small, 12)
    clip = tmp_path / "camera.ts"
    clip.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    out, report = tmp_path / "out.mkv", tmp_path / "report.json"
    assert main(["enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights), "--runtime", "local",
                 "--report", str(report)]) == 0
    err = capsys.readouterr().err  # two segments cut apart and joined again: sizes differ, timestamps overlap
    assert "the resolution changed: 10 frames scaled to the first frame's size" in err
    assert "timestamps went back" in err
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    data = json.loads(report.read_text())
    assert {(f.width, f.height) for f in frames} == {(320, 180)} and len(frames) == data["frames_out"] == 22
    assert data["resized_frames"] == 10 and data["retimed_frames"] > 0
    assert all(b.pts > a.pts for a, b in pairwise(frames))


@pytest.fixture(scope="module")
def default_cluster() -> Iterator[tuple[str, bool]]:
    """A one-node cluster started with Ray's defaults (token authentication where an earlier embedded run left a
    token in ~/.ray, as a user's machine would have), no RAY_ADDRESS: its address, and whether it checks tokens."""
    from tests.rtsp import free_port

    if shutil.which("ray") is None:
        pytest.skip("the ray command line is not installed")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    started = subprocess.run(["ray", "start", "--head", f"--port={port}", "--num-cpus=1",
                              "--include-dashboard=false", "--disable-usage-stats", "--node-ip-address=127.0.0.1"],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        yield f"127.0.0.1:{port}", "Token authentication is enabled" in started.stdout + started.stderr
    finally:
        import ray

        ray.shutdown()  # `ray stop` ends every Ray process here: this process's own Ray would take pytest down
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120, check=False)


def _dicface(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dicface.pipeline.cli", *argv], env=clean | (env or {}),
                          capture_output=True, text=True, timeout=300, cwd=REPO, check=False)


def test_an_embedded_run_does_not_join_a_cluster_running_on_this_machine(
    default_cluster: tuple[str, bool], tmp_path: Path, tiny_weights: Path
) -> None:
    clip, report = tmp_path / "clip.mp4", tmp_path / "report.json"
    make_clip(clip, count=6, width=160, height=96)
    run = _dicface("enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--runtime", "ray", "--weights",
                   str(tiny_weights), "--report", str(report))
    assert run.returncode == 0, run.stderr[-3000:]
    address, checks_tokens = default_cluster
    probe = (f"import ray; ray.init(address='{address}', log_to_driver=False); "
             "print(ray.get_runtime_context().get_node_id())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | (
        {"RAY_AUTH_MODE": "token"} if checks_tokens else {})
    theirs = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO,
                            check=False, env=env)
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    ours = json.loads(report.read_text())["pools"]["detect"]["nodes"]
    assert theirs.stdout.strip().splitlines()[-1] not in ours  # the run had a Ray of its own


def test_a_cluster_started_with_rays_defaults_is_reached_with_its_token(
    default_cluster: tuple[str, bool], tmp_path: Path, tiny_weights: Path
) -> None:
    address, checks_tokens = default_cluster
    clip = tmp_path / "clip.mp4"
    make_clip(clip, count=6, width=160, height=96)
    common = ["--address", address, "--weights", str(tiny_weights), "--workers", "1", "--cpus-per-actor", "0.4"]
    run = _dicface("enhance", str(clip), "-o", str(tmp_path / "o.mp4"), *common)
    assert run.returncode == 0, run.stderr[-3000:]
    wrong = _dicface("enhance", str(clip), "-o", str(tmp_path / "o2.mp4"), *common, env={"RAY_AUTH_TOKEN": "0" * 32})
    if checks_tokens:
        last = wrong.stderr.strip().splitlines()[-1]
        assert wrong.returncode == 2 and "ray get-auth-token" in last and "Traceback" not in wrong.stderr, last
    else:  # a token client reaches a cluster without authentication too
        assert wrong.returncode == 0, wrong.stderr[-3000:]


def test_an_embedded_run_starts_its_own_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from dicface.models.distributed import connect

    seen: dict[str, object] = {}
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(kw))
    handler = signal.getsignal(signal.SIGTERM)
    connect(None)
    assert seen["address"] == "local"  # not None: that would join a cluster found in Ray's temp folder
    assert signal.getsignal(signal.SIGTERM) == handler
