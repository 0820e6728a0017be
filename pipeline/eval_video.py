"""``dicface eval-video INPUT OUTPUT``: the temporal measures of ``pipeline.temporal`` for any input/output pair.

The faces come from the ``--tracks`` file of the enhance run that made the output, or are found in the input by
the same detection and tracking as ``dicface enhance`` (scene cuts restart them). The output may be any whole or
fractional upscale of the input; both must have the same number of frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from dicface.models.atomic import atomic_output
from dicface.models.errors import InputError
from dicface.models.extras import require
from dicface.pipeline.cuts import CutDetector
from dicface.pipeline.detect.regions import ScheduledDetector
from dicface.pipeline.temporal import FaceObservation, TemporalMeter, TemporalSummary, landmark_jitter
from dicface.pipeline.track import Tracker
from dicface.pipeline.types import TrackState


@dataclass(frozen=True)
class TrackRow:
    track_id: int
    frames: int
    warp: float
    warp_bicubic: float
    appearance: float
    appearance_bicubic: float
    jitter: float | None


def decode_pair(input_path: Path, output_path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Frames of both videos in lockstep, (H, W, 3) and (H', W', 3) uint8 RGB; an error if the counts differ."""
    try:
        with av.open(str(input_path)) as a, av.open(str(output_path)) as b:
            ours, theirs = a.decode(video=0), b.decode(video=0)
            count = 0
            for mine, other in zip(ours, theirs, strict=False):
                yield mine.to_ndarray(format="rgb24"), other.to_ndarray(format="rgb24")
                count += 1
            rest = sum(1 for _ in ours) + sum(1 for _ in theirs)
            if rest:
                raise InputError(f"{input_path} and {output_path} differ in length by {rest} frames "
                                 f"(after {count}): not an input and its output")
    except (av.error.FileNotFoundError, av.error.InvalidDataError) as exc:
        raise InputError(f"not a readable video: {exc}") from exc


def evaluate(input_path: Path, output_path: Path, detector: ScheduledDetector | None,
             tracks: dict[int, list[FaceObservation]] | None = None,
             progress: Callable[[int], None] | None = None) -> TemporalMeter:
    """Run the meter over the pair, faces from ``tracks`` (by frame index) or found with ``detector``."""
    if tracks is None and detector is None:
        raise ValueError("need the tracks or a detector")
    meter, tracker, cuts = TemporalMeter(), Tracker(), CutDetector()
    states: list[TrackState] = []
    for index, (image, output) in enumerate(decode_pair(input_path, output_path)):
        cut = cuts(image)
        if cut:
            meter.reset()
        if tracks is not None:
            faces = tracks.get(index, [])
        else:
            assert detector is not None
            if cut:
                tracker.reset()
                states = []
            boxes = [s.bbox for s in states]
            full = cut or detector.is_full(index)
            request = detector.full_request(image) if full else detector.request(image, boxes)
            states = tracker.update(detector.detect(request))
            faces = [FaceObservation.of(s) for s in states if s.confirmed]
        meter.add(index, image, output, faces)
        if progress:
            progress(index + 1)
    return meter


def track_rows(meter: TemporalMeter) -> list[TrackRow]:
    """One row per track with at least one measured pair."""
    rows = []
    for track_id, series in sorted(meter.tracks.items()):
        if not series.frames:
            continue
        total, count = landmark_jitter(series.landmarks, series.widths)
        means = {name: float(np.mean(values)) for name, values in series.values.items()}
        rows.append(TrackRow(track_id, len(series.frames), means["warp"], means["warp_bicubic"],
                             means["appearance"], means["appearance_bicubic"], total / count if count else None))
    return rows


def report_dict(summary: TemporalSummary, rows: list[TrackRow]) -> dict[str, object]:
    return summary.to_dict() | {"tracks": [
        {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.__dict__.items()} for row in rows]}


def table_lines(summary: TemporalSummary, rows: list[TrackRow]) -> list[str]:
    """``dicface eval-video``'s table: a row per track (output / bicubic), the whole run, and a legend."""
    lines = [f"{'track':>5} {'pairs':>5} {'warp out/bicubic':>17} {'appearance out/bicubic':>23} {'jitter':>8}"]
    for row in rows:
        jitter = f"{row.jitter:8.4f}" if row.jitter is not None else f"{'-':>8}"
        lines.append(f"{row.track_id:>5} {row.frames:>5} {row.warp:8.3f}/{row.warp_bicubic:<8.3f} "
                     f"{row.appearance:11.3f}/{row.appearance_bicubic:<11.3f} {jitter}")
    if not summary.pairs:
        return [*lines, "no face was tracked in two consecutive frames: nothing to measure"]
    d = summary.to_dict()
    jitter = d["landmark_jitter"] if d["landmark_jitter"] is not None else "-"
    return [*lines,
            f"{'all':>5} {summary.pairs:>5} {d['warping_error']:8.3f}/{d['warping_error_bicubic']:<8.3f} "
            f"{d['appearance_change']:11.3f}/{d['appearance_change_bicubic']:<11.3f} {jitter:>8}",
            "warping error: change along the input's motion that the input does not show (Y levels; lower is "
            "steadier); bicubic: the same for a bicubic upscale of the input"]


def write_plot(meter: TemporalMeter, path: Path, title: str) -> None:
    """Per track over time: the output's warping error (solid) and bicubic's (dashed), one colour per track."""
    matplotlib = require("matplotlib", "plot", "eval-video --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (warp_ax, look_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for k, (track_id, series) in enumerate(sorted(meter.tracks.items())):
        if not series.frames:
            continue
        colour = f"C{k % 10}"
        warp_ax.plot(series.frames, series.values["warp"], color=colour, label=f"track {track_id}")
        warp_ax.plot(series.frames, series.values["warp_bicubic"], color=colour, linestyle="--", linewidth=0.8)
        look_ax.plot(series.frames, series.values["appearance"], color=colour)
        look_ax.plot(series.frames, series.values["appearance_bicubic"], color=colour, linestyle="--",
                     linewidth=0.8)
    warp_ax.set_ylabel("warping error (Y levels)")
    look_ax.set_ylabel("appearance change (Y levels)")
    look_ax.set_xlabel("frame")
    warp_ax.set_title(f"{title}\nsolid: output, dashed: bicubic upscale of the input")
    if warp_ax.lines:
        warp_ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
