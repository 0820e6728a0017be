"""The Ray runtime against the in-process runner on the same generated clips: same frames, same tracks, also when
actors are killed mid-run and when streams share the pools.

Outputs are encoded losslessly: libx264 at normal settings is not bit-reproducible from run to run on a loaded
machine (measured: the same frames encoded twice in one process can differ), and the claim under test is about
the pipeline's frames, not the encoder's choices. DIC runs in fp32: in bf16 (``precision: auto`` on a CPU with AMX)
the x8 member's convolutions round differently on another thread count (up to a level in 65 % of the pixels,
measured), and Ray's actors run on one thread.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dicface.configs.model import InferenceOptions
from dicface.configs.schema import EnhanceConfig, RunConfig, RuntimeConfig
from dicface.configs.video import DetectConfig, EncodeOptions
from dicface.pipeline.examples import back_and_forth, face_clip_frames, make_face_clip, write_clip
from dicface.pipeline.job import enhance_file, enhance_many, enhance_split
from dicface.pipeline.quality import read_frames
from dicface.pipeline.report import RunReport
from dicface.pipeline.runtime.build import open_runner
from dicface.pipeline.runtime.plan import RunMode
from dicface.pipeline.runtime.sequencer import StreamRunner, frames_held
from dicface.pipeline.runtime.writer import WRITE_QUEUE
from dicface.pipeline.segments import OVERLAP_FRAMES
from dicface.pipeline.sink import VideoSink
from dicface.pipeline.source import FileSource
from dicface.pipeline.types import Frame

ray = pytest.importorskip("ray")
LOSSLESS = EncodeOptions(crf=0, preset="ultrafast")
RUN = RunConfig(inference=InferenceOptions(precision="fp32"), detect=DetectConfig(every=5),
                enhance=EnhanceConfig(window=4))


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


def _local(mode: RunMode | None = None) -> StreamRunner:
    return open_runner(RUN, mode)


def _ray(workers: int = 1) -> StreamRunner:
    return open_runner(replace(RUN, runtime=RuntimeConfig(workers=workers)), runtime="ray")


@pytest.fixture(scope="module")
def expected(clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """The in-process runner's video and tracks for each clip."""
    folder = tmp_path_factory.mktemp("local")
    runner, out = _local(), {}
    for clip in clips:
        video, tracks = folder / clip.name, folder / f"{clip.stem}.jsonl"
        enhance_file(clip, video, runner, LOSSLESS, tracks)
        out[clip.name] = (video, tracks.read_text())
    return out


def _same_frames(a: Path, b: Path, shared_batches: bool = False) -> None:
    """Identical decoded frames. ``shared_batches``: the run's streams shared DIC batches, and a face's output
    depends on its batch-mates by floating-point rounding (convolutions take other paths for other batch sizes:
    measured 1e-6), which may flip a pixel by a level or two: then PSNR >= 50 dB is asked of every frame."""
    frames_a, frames_b = read_frames(a), read_frames(b)
    assert len(frames_a) == len(frames_b)
    for i, (x, y) in enumerate(zip(frames_a, frames_b, strict=True)):
        if shared_batches:
            mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
            assert mse == 0 or 10 * np.log10(255**2 / mse) >= 50, f"frame {i}: MSE {mse:.3f}"
        else:
            assert np.array_equal(x, y), f"frame {i} differs in {(x != y).any(axis=2).sum()} pixels"


def test_same_output_as_in_process(local_ray, clips, expected, tmp_path):
    with _ray() as runner:
        report = enhance_file(clips[0], tmp_path / "out.mp4", runner, LOSSLESS, tmp_path / "t.jsonl")
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
                for pool in runner.services.pools().values():
                    ray.kill(pool.actors[0], no_restart=False)

        enhance_file(clips[0], tmp_path / "out.mp4", runner, LOSSLESS, on_progress=kill_once)
        usage = runner.usage()
    assert killed.is_set()
    _same_frames(tmp_path / "out.mp4", expected["a.mp4"][0])
    assert usage["enhance"].retries + usage["detect"].retries >= 1


def test_an_actor_killed_twice_in_a_row_still_gives_the_whole_output(local_ray, clips, expected, tmp_path):
    from dicface.pipeline.runtime.ray_runtime import _actor_state

    with _ray() as runner:
        kills: list[float] = []

        def kill_twice(report: RunReport) -> None:  # the second kill 1 s after the restarted actor is back
            if kills:
                return
            actor = runner.services.enhance_pool.actors[0]
            ray.kill(actor, no_restart=False)
            kills.append(time.monotonic())
            while _actor_state(actor) != "ALIVE" and time.monotonic() < kills[0] + 60:
                time.sleep(0.05)
            time.sleep(1.0)
            ray.kill(actor, no_restart=False)
            kills.append(time.monotonic())

        report = enhance_file(clips[0], tmp_path / "out.mp4", runner, LOSSLESS, on_progress=kill_twice)
        usage = runner.usage()
    assert len(kills) == 2
    _same_frames(tmp_path / "out.mp4", expected["a.mp4"][0])
    assert usage["enhance"].retries >= 1
    # the figures are the driver's: as without a restart (test_same_output_as_in_process)
    assert (usage["detect"].calls, usage["enhance"].calls, usage["enhance"].items) == (24, 6, report.faces_enhanced)


def test_a_job_shares_the_pools(local_ray, clips, expected, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    (tmp_path / "out").mkdir()
    with _ray() as runner:
        results = enhance_many([*clips, bad], tmp_path / "out", runner, LOSSLESS, streams=3)
    assert [r.error is None for r in results] == [True, True, False]
    assert "not a readable video" in results[2].error
    for result in results[:2]:
        _same_frames(result.output, expected[result.source.name][0], shared_batches=True)


def test_a_long_file_split_into_parts_run_at_once(local_ray, tmp_path):
    clip = tmp_path / "long.mp4"
    make_face_clip(clip, count=64, width=320, height=180, face_widths=(16, 20), gop=16)
    expected = enhance_split(clip, tmp_path / "local.mp4", _local(), 2, LOSSLESS)
    with _ray() as runner:
        report = enhance_split(clip, tmp_path / "ray.mp4", runner, 2, LOSSLESS, tmp_path / "t.jsonl", streams=2)
        usage, tail = runner.usage(), runner.sequencer.enhance.fusion.delay
    _same_frames(tmp_path / "ray.mp4", tmp_path / "local.mp4", shared_batches=True)
    assert report.frames_out == expected.frames_out == 64 and report.tracks == expected.tracks == 2
    # the second part's warm-up frames are detected too, and the first part's lookahead frames past its end
    assert usage["detect"].calls == 64 + OVERLAP_FRAMES + tail and tail == 4


class _CountedSource(FileSource):
    """A FileSource that counts its decoded frames still alive (weak references on their pixels)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.alive = self.peak_alive = 0

    def __iter__(self) -> Iterator[Frame]:
        for frame in super().__iter__():
            self.alive += 1
            self.peak_alive = max(self.peak_alive, self.alive)
            weakref.finalize(frame.image, self._released)
            yield frame

    def _released(self) -> None:
        self.alive -= 1


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320 frames of 640x360: a face clip played forwards and backwards (faces keep moving, never leave)."""
    frames, _ = face_clip_frames(64, 640, 360, (20, 22))
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    write_clip(path, back_and_forth(frames, 320), audio=False)
    return path


@contextlib.contextmanager
def _cpu_hogs(count: int) -> Iterator[None]:
    """``count`` busy processes beside the test: a loaded machine, where threads run late."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["local", "ray"])
def test_memory_stays_flat_over_a_long_clip(local_ray, long_clip, tmp_path, runtime):
    """Frames held at once stay within the bound derived from the configuration (``frames_held``: lookahead, two
    DIC windows, the fusion's lookahead, the encoder's queue), whatever the length and, in-process, on a loaded
    machine (a busy process beside it; Ray's actors run niced, so a busy process would starve them rather than
    shift their timing); the process's memory in the last third of the run is no higher than in the first (a leaked
    frame is 0.7 MB: 100 leaked frames per third would show as 70 MB)."""
    rss: list[float] = []
    with contextlib.ExitStack() as stack:
        runner = _local() if runtime == "local" else stack.enter_context(_ray())
        source = stack.enter_context(_CountedSource(long_clip))
        sink = stack.enter_context(VideoSink(tmp_path / "out.mp4", source.info, (), LOSSLESS))
        stack.enter_context(_cpu_hogs(1 if runtime == "local" else 0))
        report = runner.run(source, sink, progress=lambda r: rss.append(_rss_mb()))
    assert report.frames_out == 320 and report.faces_enhanced > 600
    assert source.alive == 0 and source.peak_alive <= frames_held(RUN.enhance, False, runner.services.lookahead)
    third = len(rss) // 3
    assert max(rss[-third:]) - max(rss[:third]) < 25, f"memory grew: {rss[:third]} ... {rss[-third:]}"


class _SlowSink:
    """A sink that takes ``seconds`` per frame: the encoder falls behind and its queue fills."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.retimed_frames, self.dropped_streams = seconds, 0, []

    def write(self, frame: Frame, image: np.ndarray | None = None) -> None:
        time.sleep(self.seconds)

    def write_packets(self, packets: list) -> None:
        pass


@pytest.mark.parametrize("measure", [False, True])
def test_frames_held_stay_within_the_derived_bound_when_the_encoder_falls_behind(clips, measure):
    """The worst timing for memory: a slow encoder whose queue is always full. The peak reaches past the part of
    the bound without the encoder and stays within the whole bound."""
    runner = _local(RunMode(measure=measure))
    with _CountedSource(clips[0]) as source:
        report = runner.run(source, _SlowSink(0.05))
    assert report.frames_out == 24 and source.alive == 0
    bound = frames_held(RUN.enhance, measure, runner.services.lookahead)
    assert bound - WRITE_QUEUE - 1 < source.peak_alive <= bound
