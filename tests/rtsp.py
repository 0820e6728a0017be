"""RTSP on 127.0.0.1 for the tests: a PyAV pusher and listener (PyPI only), and the gst-rtsp-server camera."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA = Path(__file__).with_name("rtsp_camera.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect(url: str, width: int, height: int, fps: int) -> tuple[av.container.OutputContainer, av.VideoStream]:
    container = av.open(url, "w", format="rtsp", options={"rtsp_transport": "tcp"}, timeout=(5, 5))
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
    container.start_encoding()  # connects (RTSP ANNOUNCE) now: fails while nobody listens
    return container, stream


def push(url: str, frames: list[np.ndarray], fps: int = 25, wait: float = 20.0,
         connected: threading.Event | None = None) -> None:
    """Push ``frames`` to an RTSP listener at ``url`` in real time, retrying until it listens (``wait`` s);
    ``connected`` is set once it does."""
    height, width = frames[0].shape[:2]
    deadline = time.monotonic() + wait
    while True:
        try:
            container, stream = _connect(url, width, height, fps)
            break
        except (av.FFmpegError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if connected is not None:
        connected.set()
    start = time.monotonic()
    for i, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, fps)
        container.mux(stream.encode(frame))
        time.sleep(max(0.0, start + (i + 1) / fps - time.monotonic()))
    container.mux(stream.encode())
    container.close()


def receive(url: str, wait: float = 60.0) -> list[np.ndarray]:
    """Listen at ``url`` for one pushed stream; its frames until the pusher ends."""
    options = {"rtsp_flags": "listen", "rtsp_transport": "tcp", "listen_timeout": str(round(wait))}
    with av.open(url, options=options, timeout=(wait + 5, 10)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
         "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('videotestsrc')")


def camera_available() -> bool:
    """gst-rtsp-server with x264enc under the system Python (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0,
    gstreamer1.0-plugins-base/-good/-ugly; ``.ci/run`` installs them where apt-get is allowed)."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True).returncode == 0


def start_camera(port: int) -> subprocess.Popen[str]:
    """Serve rtsp://127.0.0.1:PORT/cam; returns once the server is up."""
    process = subprocess.Popen([SYSTEM_PYTHON, str(CAMERA), str(port)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process
