"""Optional extras: a feature whose package is missing says which extra installs it; the rest runs without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dicface.configs.schema import RunConfig, RuntimeConfig
from dicface.models.errors import InputError, MissingExtra
from dicface.models.extras import installed, require
from dicface.pipeline.cli import main
from dicface.pipeline.runtime.plan import use_ray
from tests.clips import make_face_clip


def test_a_missing_package_names_its_extra() -> None:
    with pytest.raises(MissingExtra, match=r"the Ray runtime needs no_such_package_x, which is not installed: "
                                           r"pip install 'dicface\[ray\]'"):
        require("no_such_package_x.sub", "ray", "the Ray runtime")
    assert issubclass(MissingExtra, InputError) and MissingExtra.exit_code == 2
    assert require("json", "plot", "json").dumps([]) == "[]"


def test_without_ray_a_job_runs_in_process_and_asking_for_ray_is_one_line(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert use_ray(RunConfig(), many=True)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as where the extra is not installed
    assert not use_ray(RunConfig(), many=True) and not use_ray(RunConfig(), many=False)
    assert use_ray(RunConfig(runtime=RuntimeConfig(runtime="ray")), many=False)
    clip = tmp_path / "clip.mp4"
    make_face_clip(clip, count=4)
    argv = ["enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights)]
    assert main([*argv, "--runtime", "ray"]) == 2
    assert "the Ray runtime needs ray, which is not installed: pip install 'dicface[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()
    assert main(argv) == 0 and (tmp_path / "out.mp4").is_file()


def test_a_folder_of_the_name_is_not_an_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray leaves /tmp/ray behind: from /tmp, ``ray`` would import as an empty namespace package."""
    (tmp_path / "fakepkg_xyz").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not installed("fakepkg_xyz")
    with pytest.raises(MissingExtra, match=r"dicface\[ray\]"):
        require("fakepkg_xyz", "ray", "the Ray runtime")
