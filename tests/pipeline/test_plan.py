"""The run's plan, decided once (``pipeline.runtime.plan``): runtime, stream URL, parts of a long file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicface.configs.schema import RunConfig, RuntimeConfig
from dicface.models.errors import InputError
from dicface.pipeline.runtime.plan import RunPlan, plan_run, use_ray


@pytest.mark.parametrize(("runtime", "address", "env", "many", "expected"), [
    (None, None, None, False, False),  # one video, no cluster: in this process
    (None, None, None, True, True),  # a job of many videos
    (None, "10.0.0.5:6379", None, False, True),  # a cluster named
    (None, None, "auto", False, True),  # ... or in RAY_ADDRESS
    ("local", "10.0.0.5:6379", None, True, False),  # asked for
    ("ray", None, None, False, True),
])
def test_the_runtime_follows_the_configuration(monkeypatch: pytest.MonkeyPatch, runtime: str | None,
                                               address: str | None, env: str | None, many: bool,
                                               expected: bool) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    assert use_ray(RunConfig(runtime=RuntimeConfig(runtime=runtime, address=address)), many) is expected


@pytest.mark.parametrize(("runtime", "output", "expected"), [
    (RuntimeConfig(runtime="ray", workers=4), "out.mp4", RunPlan("ray", parts=2, min_seconds=60.0)),  # a part per
    # two DIC actors, for files of 60 s or more
    (RuntimeConfig(runtime="ray", workers=1), "out.mp4", RunPlan("ray")),  # one stream keeps two actors busy
    (RuntimeConfig(runtime="local", workers=8), "out.mp4", RunPlan("local")),  # parts run at once only on Ray
    (RuntimeConfig(runtime="ray", workers=8), "out.avi", RunPlan("ray")),  # parts cannot be joined into AVI
    (RuntimeConfig(runtime="ray", split=3), "out.mp4", RunPlan("ray", parts=3)),
    (RuntimeConfig(runtime="ray", workers=8, split=1), "out.mp4", RunPlan("ray")),
])
def test_split_auto_cuts_long_files_for_many_dic_actors(tmp_path: Path, runtime: RuntimeConfig, output: str,
                                                        expected: RunPlan) -> None:
    video = tmp_path / "in.mp4"
    video.write_bytes(b"")
    assert plan_run(RunConfig(runtime=runtime), video, tmp_path / output) == expected


def test_a_url_is_a_stream_and_is_never_split(tmp_path: Path) -> None:
    cfg = RunConfig(runtime=RuntimeConfig(runtime="ray", workers=8))
    assert plan_run(cfg, "rtsp://cam/1", tmp_path / "out.mp4") == RunPlan("ray", url=True)
    with pytest.raises(InputError, match="cannot be split"):
        plan_run(RunConfig(runtime=RuntimeConfig(runtime="ray", split=2)), "rtsp://cam/1", tmp_path / "out.mp4")
    with pytest.raises(InputError, match="add --runtime ray"):
        plan_run(RunConfig(runtime=RuntimeConfig(runtime="local", split=2)), tmp_path, tmp_path / "out.mp4")


def test_a_job_of_many_videos_runs_on_ray_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert plan_run(RunConfig(), videos=3) == RunPlan("ray", streams=2)  # runtime.streams videos at once
    assert plan_run(RunConfig()) == RunPlan("local")
    local = RunConfig(runtime=RuntimeConfig(runtime="local", streams=4))
    assert plan_run(local, videos=3) == RunPlan("local")  # in-process: one video after another
