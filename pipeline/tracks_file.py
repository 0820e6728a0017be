"""The ``--tracks`` file: one JSON line per frame with its tracks, written by a run, read by ``eval-video``, joined
across the parts of a split run. This module owns the format.

A line: ``{"frame": index, "pts": pts, "time": seconds, "tracks": [{"id", "confirmed", "bbox": [x1, y1, x2, y2],
"landmarks": [[x, y] * 68] or null}]}`` in input-frame pixels (2 decimals), plus ``"warmup": true`` on the frames
a split part decodes before its output starts (they let ``join_tracks`` carry each track's id across the boundary:
the tracks of part i + 1's last warm-up frame are matched by box overlap to part i's on the same frame).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from dicface.models.atomic import atomic_output
from dicface.models.errors import InputError
from dicface.pipeline.boxes import iou_matrix
from dicface.pipeline.temporal import FaceObservation
from dicface.pipeline.types import Frame, TrackState


def track_record(frame: Frame, states: list[TrackState], warmup: bool = False) -> str:
    """One JSON line: the frame's tracks with box and smoothed landmarks in input-frame pixels. ``warmup``: a
    frame before a segment's output, marked so that joining the segments can match their track ids."""
    return json.dumps(({"warmup": True} if warmup else {}) | {
        "frame": frame.index,
        "pts": frame.pts,
        "time": float(frame.pts * frame.time_base) if frame.pts is not None else None,
        "tracks": [
            {"id": s.track_id, "confirmed": s.confirmed, "bbox": [round(v, 2) for v in s.bbox],
             "landmarks": None if s.landmarks is None else np.round(s.landmarks, 2).tolist()}
            for s in states
        ],
    })


def tracks_from_file(path: Path) -> dict[int, list[FaceObservation]]:
    """The confirmed tracks per frame index of an enhance run's ``--tracks`` JSON lines (warm-up lines skipped)."""
    faces: dict[int, list[FaceObservation]] = {}
    try:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("warmup"):
                continue
            faces[record["frame"]] = [
                FaceObservation.of(TrackState(t["id"], tuple(t["bbox"]), None if t["landmarks"] is None else
                                              np.asarray(t["landmarks"], np.float32), t["confirmed"], 0))
                for t in record["tracks"] if t["confirmed"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a dicface --tracks file ({exc})") from exc
    return faces


def _match_ids(before: dict, after: dict, min_iou: float = 0.3) -> dict[int, int]:
    """One frame's tracks as seen by two parts: ``before`` from part i (joined ids), ``after`` from the warm-up
    of part i + 1. Returns part i + 1's id -> joined id for the tracks whose boxes overlap (Hungarian on IoU)."""
    old, new = before["tracks"], after["tracks"]
    if not old or not new:
        return {}
    iou = iou_matrix(np.array([t["bbox"] for t in new]), np.array([t["bbox"] for t in old]))
    rows, cols = linear_sum_assignment(-iou)
    return {new[r]["id"]: old[c]["id"] for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou}


def join_tracks(parts: list[Path], out: Path | None) -> int:
    """Join the parts' tracks JSON lines (warm-up lines dropped, ids carried across boundaries, new ids numbered
    on) into ``out`` (atomically; None: count only). Returns the number of confirmed tracks of the joined run."""
    confirmed: set[int] = set()
    next_id = 1
    previous: dict | None = None  # the last output record of the part before, with joined ids
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(open(stack.enter_context(atomic_output(out)), "w")) if out else None
        for part in parts:
            records = [json.loads(line) for line in part.read_text().splitlines()]
            warm = [r for r in records if r.get("warmup")]
            ids: dict[int, int] = {}
            if warm and previous is not None and warm[-1]["frame"] == previous["frame"]:
                ids = _match_ids(previous, warm[-1])
            for record in (r for r in records if not r.get("warmup")):
                for track in record["tracks"]:
                    if track["id"] not in ids:
                        ids[track["id"]] = next_id
                        next_id += 1
                    track["id"] = ids[track["id"]]
                    if track["confirmed"]:
                        confirmed.add(track["id"])
                if handle:
                    handle.write(json.dumps(record) + "\n")
                previous = record
    return len(confirmed)
