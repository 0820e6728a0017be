"""A two-node Ray cluster on this machine (``ray start --head`` plus a second node with its own custom resource):
``dicface enhance --address`` places the detection pool on one node and the DIC pool on the other, and writes the
same frames as the in-process runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dicface.pipeline.cli import main
from dicface.pipeline.examples import make_face_clip
from dicface.pipeline.quality import read_frames
from tests.rtsp import free_port

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("ray") is None, reason="the ray command line is not installed")]
# The cluster runs token authentication, as Ray's security guide has clusters started (every node with
# RAY_AUTH_MODE=token); dicface runs in the user's plain environment and must find the token by itself.
RAY_ENV = os.environ | {"RAY_AUTH_MODE": "token"}
ENV = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
EXACT = ["--crf", "0", "--preset", "ultrafast", "--precision", "fp32"]  # lossless, fp32: see test_ray_runtime.py


def ray_cli(*argv: str) -> None:
    subprocess.run(["ray", *argv], env=RAY_ENV, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def cluster() -> str:
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=150000000",
              "--disable-usage-stats"]
    try:
        ray_cli("get-auth-token", "--generate")  # a fresh machine has no token yet (kept if there is one)
        ray_cli("start", "--head", f"--port={port}", "--include-dashboard=false", '--resources={"head": 1}',
                *common)
        ray_cli("start", f"--address={address}", '--resources={"node2": 1}', *common)
        yield address
    finally:
        import ray

        ray.shutdown()  # `ray stop` ends every Ray process here: this process's own Ray would take pytest down
        subprocess.run(["ray", "stop", "--force"], env=RAY_ENV, capture_output=True, timeout=120)


def test_job_on_two_nodes_matches_the_in_process_run(cluster, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_face_clip(clip, count=16, width=320, height=180, face_widths=(16, 20))
    local = tmp_path / "local.mp4"
    assert main(["enhance", str(clip), "-o", str(local), "--runtime", "local", *EXACT]) == 0
    out, report = tmp_path / "cluster.mp4", tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "dicface.pipeline.cli", "enhance", str(clip), "-o", str(out), "--address", cluster,
         "--detect-resources", '{"head": 1}', "--dic-resources", '{"node2": 1}', "--report", str(report),
         *EXACT], env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    pools = json.loads(report.read_text())["pools"]
    assert pools["detect"]["calls"] == 16 and pools["enhance"]["calls"] > 0
    assert len(pools["detect"]["nodes"]) == len(pools["enhance"]["nodes"]) == 1
    assert pools["detect"]["nodes"] != pools["enhance"]["nodes"]  # the work ran on both nodes
    frames_local, frames_cluster = read_frames(local), read_frames(out)
    assert len(frames_local) == len(frames_cluster) == 16
    assert all(np.array_equal(a, b) for a, b in zip(frames_local, frames_cluster, strict=True))
