"""Scene cuts: found where a shot changes, not on a pan; the sequencer restarts tracks there."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dicface.configs.schema import EnhanceConfig, RunConfig
from dicface.configs.video import DetectConfig, EncodeOptions
from dicface.pipeline.cuts import CutDetector
from dicface.pipeline.examples import face_clip_frames, write_clip
from dicface.pipeline.job import enhance_file
from dicface.pipeline.runtime.build import open_runner
from dicface.pipeline.runtime.plan import RunMode


def _two_shots(count: int) -> list[np.ndarray]:
    """A panning shot of two faces, then the same faces in a much darker shot (same places: only a cut test can
    tell the tracks apart)."""
    frames, _ = face_clip_frames(count, 320, 180, (36, 30))
    return frames[: count // 2] + [(f * 0.35).astype(np.uint8) for f in frames[count // 2 :]]


def test_a_cut_is_found_at_the_new_shot_and_never_on_a_pan() -> None:
    detector = CutDetector()
    assert [t for t, f in enumerate(_two_shots(12)) if detector(f)] == [6]
    detector = CutDetector()
    assert not any(detector(f) for f in face_clip_frames(12, 320, 180, (36, 30))[0])


def test_the_sequencer_restarts_tracks_at_a_cut(tmp_path: Path) -> None:
    clip = tmp_path / "shots.mp4"
    write_clip(clip, _two_shots(16), audio=False)
    reports = {}
    for cuts in (True, False):
        cfg = RunConfig(detect=DetectConfig(every=4), enhance=EnhanceConfig(scene_cuts=cuts))
        runner = open_runner(cfg, RunMode(sr=False, measure=True))
        reports[cuts] = enhance_file(clip, tmp_path / "out.mp4", runner, EncodeOptions(preset="ultrafast"))
    assert reports[True].scene_cuts == 1 and reports[True].tracks == 4  # two faces, two shots
    assert reports[False].scene_cuts == 0 and reports[False].tracks == 2
    assert reports[True].temporal.pairs < reports[False].temporal.pairs  # no pair across the cut
