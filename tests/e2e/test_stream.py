"""``dicface stream`` over real RTSP on 127.0.0.1: pushed in (``--listen``) and pulled from a camera-like server,
out to an RTSP listener or a file; sources that drop and come back; SIGTERM; the live drop policy."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from dicface.pipeline.examples import face_clip_frames
from tests.rtsp import camera_available, free_port, push, receive, start_camera

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    frames, _ = face_clip_frames(40, 320, 180, (16, 20))
    return list(frames)


def dicface_stream(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dicface.pipeline.cli", "stream", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-2000:]
    return out


def video_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0)]


def test_pushed_stream_reconnects_and_counts_dropped_frames(faces, tmp_path):
    url = f"rtsp://127.0.0.1:{free_port()}/in"
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    process = dicface_stream(url, "--listen", "-o", str(out), "--sr", "none", "--reconnect-timeout", "4",
                             "--max-pending", "4", "--report", str(report))
    push(url, faces[:25])
    time.sleep(1.0)  # the source is gone for a second, then comes back
    push(url, faces[25:])
    finish(process)
    result = json.loads(report.read_text())
    assert result["reconnects"] == 1
    assert result["frames_out"] + result["dropped_frames"] == 40  # every frame is written or counted as dropped
    assert result["frames_out"] >= 10
    times = video_times(out)
    assert len(times) == result["frames_out"] and all(b > a for a, b in itertools.pairwise(times))


def test_enhanced_stream_pushed_to_an_rtsp_server(faces, tmp_path, tiny_weights):
    source, target = f"rtsp://127.0.0.1:{free_port()}/in", f"rtsp://127.0.0.1:{free_port()}/out"
    received: list[np.ndarray] = []
    listener = threading.Thread(target=lambda: received.extend(receive(target)), daemon=True)
    listener.start()
    report = tmp_path / "report.json"
    process = dicface_stream(source, "--listen", "-o", target, "--reconnect-timeout", "3", "--max-pending", "100",
                             "--max-face", "64", "--max-reduction", "4", "--weights", str(tiny_weights),
                             "--report", str(report))
    push(source, faces[:24])
    finish(process)
    listener.join(timeout=30)
    result = json.loads(report.read_text())
    assert result["frames_out"] == 24 and result["dropped_frames"] == 0 and result["faces_enhanced"] > 0
    assert len(received) == 24 and received[0].shape == (180, 320, 3)


def test_sigterm_finalises_the_output(faces, tmp_path):
    url = f"rtsp://127.0.0.1:{free_port()}/in"
    out = tmp_path / "out.mp4"
    process = dicface_stream(url, "--listen", "-o", str(out), "--sr", "none", "--max-pending", "100")

    connected = threading.Event()

    def push_until_stopped() -> None:  # ~5 s of video; dicface hangs up part-way
        with contextlib.suppress(av.FFmpegError, OSError):
            push(url, faces * 3, connected=connected)

    pusher = threading.Thread(target=push_until_stopped, daemon=True)
    pusher.start()
    assert connected.wait(timeout=30), "dicface never listened"
    time.sleep(2.0)  # some frames in
    process.send_signal(signal.SIGTERM)
    summary = finish(process, timeout=30)
    frames = int(summary.split(" frames")[0])
    assert frames > 0 and len(video_times(out)) == frames
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


@pytest.mark.skipif(not camera_available(), reason="gst-rtsp-server (Debian packages) not installed")
def test_pulls_from_a_camera_that_restarts(tmp_path):
    port = free_port()
    camera = start_camera(port)
    out_dir, report = tmp_path / "segments", tmp_path / "report.json"
    process = dicface_stream(f"rtsp://127.0.0.1:{port}/cam", "-o", str(out_dir), "--sr", "none",
                             "--segment-seconds", "1", "--reconnect-timeout", "20", "--duration", "9",
                             "--report", str(report))
    try:
        time.sleep(4.0)
        camera.kill()  # the camera goes away ...
        camera.wait()
        time.sleep(1.5)
        camera = start_camera(port)  # ... and comes back
        finish(process)
    finally:
        camera.kill()
    result = json.loads(report.read_text())
    assert result["reconnects"] >= 1 and result["frames_out"] > 50
    segments = sorted(out_dir.glob("segment_*.mp4"))
    assert len(segments) >= 3
    assert sum(len(video_times(s)) for s in segments) == result["frames_out"]
