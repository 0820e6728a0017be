"""The in-process runtime: decode -> detect -> track -> align -> enhance -> blend -> encode, one stream, in order.

DIC runs on a window of frames at a time (all their faces in one batch). The landmarks DIC decodes for the
window's last frame are fed back to the tracker, whose state is at that frame (earlier frames' would be stale).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO

import numpy as np

from pipeline.align import Aligner, FaceCrop
from pipeline.blend import Blender, PasteFace
from pipeline.detect.regions import ScheduledDetector
from pipeline.enhance import EnhancedFace, Enhancer
from pipeline.io import FileSource, Frame, ImageFolderSource, VideoSink
from pipeline.track import TrackConfig, Tracker, TrackState

STAGES = ("decode", "detect", "track", "align", "enhance", "blend", "encode")


@dataclass(frozen=True)
class RunOptions:
    window: int = 8  # frames whose faces go to DIC in one batch
    feedback: bool = True  # DIC's landmarks update the tracker
    upscale: float = 1.0  # whole-frame scale of the output
    preview: bool = False  # output = input | enhanced, side by side

    def __post_init__(self) -> None:
        if self.window < 1 or not 1.0 <= self.upscale <= 8.0:
            raise ValueError(f"invalid run options: {self}")


@dataclass
class RunReport:
    frames_in: int = 0
    frames_out: int = 0
    faces_enhanced: int = 0
    tracks: int = 0
    corrupt_packets: int = 0
    input_warning: str | None = None  # e.g. a damaged tail: the frames before it were processed
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    wall_seconds: float = 0.0

    def ms_per_frame(self) -> dict[str, float]:
        return {k: round(1000 * v / max(self.frames_in, 1), 2) for k, v in self.seconds.items()}

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["ms_per_frame"] = self.ms_per_frame()
        data["fps"] = round(self.frames_out / self.wall_seconds, 2) if self.wall_seconds else None
        return data


def track_record(frame: Frame, states: list[TrackState]) -> str:
    """One JSON line: the frame's tracks with box and smoothed landmarks in input-frame pixels."""
    return json.dumps({
        "frame": frame.index,
        "pts": frame.pts,
        "time": float(frame.pts * frame.time_base) if frame.pts is not None else None,
        "tracks": [
            {"id": s.track_id, "confirmed": s.confirmed, "bbox": [round(v, 2) for v in s.bbox],
             "landmarks": None if s.landmarks is None else np.round(s.landmarks, 2).tolist()}
            for s in states
        ],
    })


class LocalRunner:
    """Runs the stages on one stream in this process. ``enhancer=None`` passes frames through (``--sr none``)."""

    def __init__(
        self,
        detector: ScheduledDetector,
        track_cfg: TrackConfig,
        aligner: Aligner,
        enhancer: Enhancer | None,
        blender: Blender,
        options: RunOptions = RunOptions(),
    ) -> None:
        self.detector, self.track_cfg, self.aligner = detector, track_cfg, aligner
        self.enhancer, self.blender, self.options = enhancer, blender, options

    def run(
        self,
        source: FileSource | ImageFolderSource,
        sink: VideoSink,
        tracks_out: IO[str] | None = None,
        progress: Callable[[RunReport], None] | None = None,
    ) -> RunReport:
        report = RunReport()
        tracker = Tracker(self.track_cfg)  # one per stream: a runner can run several videos in turn
        seen_tracks: set[int] = set()
        pending: list[tuple[Frame, list[FaceCrop]]] = []
        states: list[TrackState] = []
        start = time.perf_counter()

        def timed(stage: str, fn: Callable[[], object]) -> object:
            t = time.perf_counter()
            result = fn()
            report.seconds[stage] += time.perf_counter() - t
            return result

        def flush() -> None:
            crops = [c for _, frame_crops in pending for c in frame_crops]
            faces: list[EnhancedFace] = timed("enhance", lambda: self.enhancer(crops)) if self.enhancer else []
            report.faces_enhanced += len(faces)
            if self.options.feedback and faces:
                last = pending[-1][0].index
                for face in faces:
                    if face.frame_index == last:
                        tracker.refine(face.track_id, face.landmarks)
            by_frame: dict[int, list[PasteFace]] = {}
            for face in faces:
                by_frame.setdefault(face.frame_index, []).append(PasteFace(face.box, face.sr))
            for frame, _ in pending:
                image = timed("blend", lambda f=frame: self._compose(f, by_frame.get(f.index, [])))
                timed("encode", lambda f=frame, im=image: sink.write(f, im))
                report.frames_out += 1
            pending.clear()
            if progress:
                progress(report)

        frames = iter(source)
        while True:
            frame = timed("decode", lambda: next(frames, None))
            if frame is None:
                break
            report.frames_in += 1
            sink.write_audio(source.take_audio())
            tracked = [s.bbox for s in states]
            detections = timed("detect", lambda f=frame, b=tracked: self.detector(f.index, f.image, b))
            states = timed("track", lambda d=detections: tracker.update(d))
            seen_tracks.update(s.track_id for s in states if s.confirmed)
            if tracks_out is not None:
                tracks_out.write(track_record(frame, states) + "\n")
            crops = timed("align", lambda f=frame, s=states: self.aligner(f, s)) if self.enhancer else []
            pending.append((frame, crops))
            if len(pending) >= self.options.window:
                flush()
        if pending:
            flush()
        sink.write_audio(source.take_audio())
        report.tracks = len(seen_tracks)
        report.corrupt_packets = source.corrupt_packets
        report.input_warning = source.stopped_early
        report.wall_seconds = time.perf_counter() - start
        return report

    def _compose(self, frame: Frame, faces: list[PasteFace]) -> np.ndarray:
        scale = self.options.upscale
        enhanced = self.blender(frame.image, faces, scale) if faces or scale != 1 else frame.image
        if not self.options.preview:
            return enhanced
        original = self.blender(frame.image, [], scale) if scale != 1 else frame.image
        return np.concatenate([original, enhanced], axis=1)
