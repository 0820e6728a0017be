"""The Ray runtime against the in-process runner on the same generated clips: same frames, same tracks, also when
actors are killed mid-run and when streams share the pools.

Outputs are encoded losslessly: libx264 at normal settings is not bit-reproducible from run to run on a loaded
machine (measured: the same frames encoded twice in one process can differ), and the claim under test is about
the pipeline's frames, not the encoder's choices.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from configs.schema import RunConfig
from pipeline.align import AlignConfig, Aligner
from pipeline.blend import Blender
from pipeline.detect.regions import DetectPlan, DetectSchedule, ScheduledDetector
from pipeline.detect.spec import DetectorSpec
from pipeline.enhance import load_enhancer
from pipeline.examples import make_face_clip
from pipeline.io import EncodeOptions
from pipeline.job import enhance_file, enhance_many
from pipeline.quality import read_frames
from pipeline.runtime.local import LocalRunner
from pipeline.runtime.ray_runtime import RayOptions, RayRunner
from pipeline.runtime.sequencer import RunOptions, RunReport
from pipeline.track import TrackConfig

ray = pytest.importorskip("ray")
LOSSLESS = EncodeOptions(crf=0, preset="ultrafast")
SCHEDULE = DetectSchedule(every=5)
OPTIONS = RunOptions(window=4)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, object_store_memory=128 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    paths = [folder / "a.mp4", folder / "b.mp4"]
    make_face_clip(paths[0], count=24, width=320, height=180, face_widths=(16, 20))
    make_face_clip(paths[1], count=16, width=256, height=144, face_widths=(18,))
    return paths


def _local() -> LocalRunner:
    detector = ScheduledDetector(DetectorSpec().build(), SCHEDULE)
    return LocalRunner(detector, TrackConfig(), Aligner(AlignConfig()), load_enhancer(RunConfig())[0], Blender(),
                       OPTIONS)


def _ray(workers: int = 1) -> RayRunner:
    return RayRunner(DetectPlan(SCHEDULE), DetectorSpec(), TrackConfig(), Aligner(AlignConfig()),
                     (RunConfig(), "tracker"), Blender(), OPTIONS, RayOptions(workers=workers))


@pytest.fixture(scope="module")
def expected(clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """The in-process runner's video and tracks for each clip."""
    folder = tmp_path_factory.mktemp("local")
    runner, out = _local(), {}
    for clip in clips:
        video, tracks = folder / clip.name, folder / f"{clip.stem}.jsonl"
        enhance_file(clip, video, runner, LOSSLESS, tracks, show_progress=False)
        out[clip.name] = (video, tracks.read_text())
    return out


def _same_frames(a: Path, b: Path) -> None:
    frames_a, frames_b = read_frames(a), read_frames(b)
    assert len(frames_a) == len(frames_b)
    for i, (x, y) in enumerate(zip(frames_a, frames_b, strict=True)):
        assert np.array_equal(x, y), f"frame {i} differs in {(x != y).any(axis=2).sum()} pixels"


def test_same_output_as_in_process(local_ray, clips, expected, tmp_path):
    with _ray() as runner:
        report = enhance_file(clips[0], tmp_path / "out.mp4", runner, LOSSLESS, tmp_path / "t.jsonl",
                              show_progress=False)
        usage = runner.usage()
    _same_frames(tmp_path / "out.mp4", expected["a.mp4"][0])
    assert (tmp_path / "t.jsonl").read_text() == expected["a.mp4"][1]
    assert report.frames_out == 24 and report.faces_enhanced > 20
    assert usage["detect"].calls == 24 and usage["enhance"].calls == 6  # one call per frame, per window
    assert 0 < usage["enhance"].busy_percent <= 100 and usage["enhance"].retries == 0


def test_killed_actors_are_restarted_and_their_calls_retried(local_ray, clips, expected, tmp_path):
    with _ray() as runner:
        killed = threading.Event()

        def kill_once(report: RunReport) -> None:  # after the first window: the next one is in flight
            if not killed.is_set():
                killed.set()
                for pool in runner.pools().values():
                    ray.kill(pool.actors[0], no_restart=False)

        enhance_file(clips[0], tmp_path / "out.mp4", runner, LOSSLESS, show_progress=False, on_progress=kill_once)
        usage = runner.usage()
    assert killed.is_set()
    _same_frames(tmp_path / "out.mp4", expected["a.mp4"][0])
    assert usage["enhance"].retries + usage["detect"].retries >= 1


def test_a_job_shares_the_pools(local_ray, clips, expected, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    (tmp_path / "out").mkdir()
    with _ray() as runner:
        results = enhance_many([*clips, bad], tmp_path / "out", runner, LOSSLESS, streams=3)
    assert [r.error is None for r in results] == [True, True, False]
    assert "not a readable video" in results[2].error
    for result in results[:2]:
        _same_frames(result.output, expected[result.source.name][0])
