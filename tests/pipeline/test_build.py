"""Runners from a run configuration (``pipeline.runtime.build``)."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest

from dicface.configs.schema import EnhanceConfig, RunConfig, RuntimeConfig
from dicface.configs.video import FusionConfig
from dicface.pipeline.runtime.build import RunMode, build_runner, run_options, use_ray
from dicface.pipeline.runtime.local import LocalRunner


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


def test_a_local_runner_carries_the_configuration_and_the_mode() -> None:
    fusion = FusionConfig(weight=0.5, frames=3, lookahead=1)
    cfg = replace(RunConfig(), enhance=EnhanceConfig(window=3, feedback=True, fusion=fusion, scene_cuts=False,
                                                     upscale=2.0))
    with contextlib.ExitStack() as stack:
        runner = build_runner(cfg, RunMode(sr=False, preview=True, measure=True), stack, False)
    assert isinstance(runner, LocalRunner) and runner.services.enhancer is None
    options = runner.options
    assert (options.window, options.feedback, options.scene_cuts, options.upscale, options.preview,
            options.measure) == (3, True, None, 2.0, True, True)
    assert options.fusion == fusion and options.fusion != FusionConfig()  # each key as the configuration says
    assert RunConfig().enhance.scene_cuts and run_options(RunConfig(), RunMode()).scene_cuts is not None
