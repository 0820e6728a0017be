"""Weak detections (below the detector's threshold) and enlarged search regions keep small faces tracked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dicface.configs.schema import RunConfig
from dicface.configs.video import DetectConfig, EncodeOptions
from dicface.pipeline.detect.regions import ScheduledDetector
from dicface.pipeline.detect.spec import build_detector
from dicface.pipeline.examples import face_clip_frames, heldout_faces, write_clip
from dicface.pipeline.job import enhance_file
from dicface.pipeline.quality import read_frames
from dicface.pipeline.runtime.build import open_runner
from dicface.pipeline.runtime.plan import RunMode

WIDTHS = (20, 26, 32)  # heads of the held-out photo, which YuNet scores low at these sizes


def _tracked_frames(tracks: Path, centres: np.ndarray) -> list[int]:
    """For each face, the frames in which a confirmed track's box holds its true centre ((T, faces, 2))."""
    counts = [0] * centres.shape[1]
    for line in tracks.read_text().splitlines():
        record = json.loads(line)
        for k, (x, y) in enumerate(centres[record["frame"]]):
            boxes = [t["bbox"] for t in record["tracks"] if t["confirmed"]]
            counts[k] += any(x1 <= x <= x2 and y1 <= y <= y2 for x1, y1, x2, y2 in boxes)
    return counts


def test_small_faces_stay_tracked_between_full_frame_passes(tmp_path: Path) -> None:
    frames, landmarks = face_clip_frames(24, 360, 200, WIDTHS, sources=heldout_faces())
    clip = tmp_path / "heldout.mp4"
    write_clip(clip, frames, audio=False, crf=26)
    centres = landmarks.mean(axis=2)  # (T, faces, 2)
    coverage = {}
    for label, detect in (("default", DetectConfig()), ("off", DetectConfig(weak_score=1.0))):
        runner = open_runner(RunConfig(detect=detect), RunMode(sr=False, tracks=True))
        tracks = tmp_path / f"{label}.jsonl"
        enhance_file(clip, tmp_path / "out.mp4", runner, EncodeOptions(preset="ultrafast"), tracks)
        coverage[label] = np.array(_tracked_frames(tracks, centres)) / len(frames)
    assert coverage["default"][1:].min() >= 0.9, coverage  # the 26- and 32-px heads: (nearly) every frame
    assert (coverage["default"] >= coverage["off"]).all() and coverage["default"].sum() > coverage["off"].sum() + 0.3, \
        coverage


def test_a_small_face_is_scored_higher_in_an_enlarged_region(tmp_path: Path) -> None:
    """The held-out photo's 26-px head in a crf-26 clip, searched around its true landmark box: at the detector's
    x2 alone it is missed or weak in some frames; its region enlarged to 32 px of face, it passes YuNet's full
    threshold (0.6) in every one."""
    frames, landmarks = face_clip_frames(10, 240, 160, (26,), sources=heldout_faces())
    clip = tmp_path / "head.mp4"
    write_clip(clip, frames, audio=False, crf=26)
    detector = build_detector(DetectConfig(), landmarks=False)
    scores = {}
    for face_px in (0.0, 32.0):
        search = ScheduledDetector(detector, DetectConfig(region_face_px=face_px))
        scores[face_px] = []
        for frame, points in zip(read_frames(clip), landmarks[:, 0], strict=True):
            (x1, y1), (x2, y2), (cx, cy) = points.min(axis=0), points.max(axis=0), points.mean(axis=0)
            found = search.detect(search.request(frame, [(float(x1), float(y1), float(x2), float(y2))]))
            scores[face_px].append(max((d.score for d in found
                                        if d.bbox[0] <= cx <= d.bbox[2] and d.bbox[1] <= cy <= d.bbox[3]), default=0.0))
    assert min(scores[32.0]) >= 0.6, scores
    assert sum(s >= 0.6 for s in scores[0.0]) < len(frames), scores
