"""The --tracks file: what a run writes is what eval-video reads, and a split run's parts join into one run."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dicface.models.errors import InputError
from dicface.pipeline.tracks_file import join_tracks, track_record, tracks_from_file
from dicface.pipeline.types import Frame, TrackState


def frame(index: int) -> Frame:
    return Frame(index, 512 * index, Fraction(1, 12800), np.zeros((4, 4, 3), np.uint8))


def state(track_id: int, x: float, confirmed: bool = True) -> TrackState:
    landmarks = np.tile([[x + 5.004, 12.0]], (68, 1)).astype(np.float32)
    return TrackState(track_id, (x, 10.0, x + 20.0, 30.0), landmarks, confirmed, 0)


def test_a_run_written_is_read_back_confirmed_tracks_only(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [track_record(frame(0), [state(1, 0.0), state(2, 50.0, confirmed=False)], warmup=True),
             track_record(frame(1), [state(1, 1.0), state(2, 51.0, confirmed=False)])]
    path.write_text("".join(line + "\n" for line in lines))
    faces = tracks_from_file(path)
    assert list(faces) == [1]  # the warm-up frame is skipped
    (face,) = faces[1]
    assert face.track_id == 1 and face.landmarks is not None and face.landmarks[0, 0] == pytest.approx(6.0)
    path.write_text("not json\n")
    with pytest.raises(InputError, match="not a dicface --tracks file"):
        tracks_from_file(path)


def test_parts_join_with_ids_carried_across_the_boundary(tmp_path: Path) -> None:
    one, two, out = tmp_path / "1.jsonl", tmp_path / "2.jsonl", tmp_path / "all.jsonl"
    one.write_text(track_record(frame(0), [state(1, 0.0)]) + "\n" + track_record(frame(1), [state(1, 1.0)]) + "\n")
    two.write_text(track_record(frame(1), [state(7, 1.2)], warmup=True) + "\n"
                   + track_record(frame(2), [state(7, 2.0), state(8, 90.0)]) + "\n")
    assert join_tracks([one, two], out) == 2  # the same face in both parts is one track; the new one is another
    joined = tracks_from_file(out)
    assert sorted(joined) == [0, 1, 2] and {f.track_id for f in joined[2]} == {1, 2}
