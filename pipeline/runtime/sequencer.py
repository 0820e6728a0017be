"""One stream, in order: decode -> detect -> track -> align -> enhance -> blend -> encode.

The sequencer owns everything stateful of a stream (tracker, window of pending frames, encoder); detection and DIC
are stateless and reached through ``Services``, which either compute in this process (``LocalServices``) or hand
the work to Ray actor pools and return a pending result (``pipeline.runtime.ray_runtime``). The order of operations
is the same for both, so both write the same video.

Two things let detection and DIC overlap with the stream's own work:
- Frames are decoded ``services.lookahead`` frames ahead; a frame due for a full-frame detection pass is submitted
  as soon as it is decoded (it needs no tracker state). Region passes need the tracks of the frame before, so they
  are submitted when their frame is reached.
- DIC works on windows of ``window`` frames, and one window is in flight while the next is tracked. The landmarks
  DIC decodes for the last frame of window k are fed back to the tracker just before frame (k + 2) * window is
  tracked, one window late: as the difference between DIC's landmarks and the tracked ones at that frame (the
  tracker's bias on that face), added to the track's current landmarks, so the feedback follows a moving face.

Encoding runs on a thread of its own (``pipeline.runtime.writer``), fed in order, so it overlaps the next frames'
decoding, detection and DIC; a file is decoded on another (``pipeline.runtime.reader``, set up by ``pipeline.job``).
A scheduled full-frame pass is narrowed to where the picture changed (``pipeline.detect.gate``): decided when the
frame is decoded, from pictures only, its regions searched with the tracked faces' once the tracks are known.

Per stream, in frame order: a scene-cut test before tracking (a cut drops every track), each track's earlier
crops for the multi-frame DIC members (``pipeline.frame_context``), temporal fusion of each track's SR faces after
DIC (``pipeline.fusion``) and, when asked, the ground-truth-free temporal measures of the
output (``pipeline.temporal``, for ``--report``).

A part of a split file (``pipeline.segments``) is a stream whose frames before ``source.first_output`` only warm
the tracker up (detected and tracked, not written), and whose frames from ``source.stop_output`` on only give the
fusion its lookahead (enhanced, not written). So that a part is computed as the whole run would be: a
stream's first frame always gets a full-frame detection pass, and windows end on multiples of ``window`` frame
indices rather than counting from the stream's first frame.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO, Generic, Protocol, TypeVar

import numpy as np

from dicface.configs.video import FusionConfig, TrackConfig
from dicface.models.faces import HR_SIZE
from dicface.pipeline.align import Aligner, members
from dicface.pipeline.blend import Blender, PasteFace
from dicface.pipeline.cuts import CutConfig, CutDetector
from dicface.pipeline.detect.gate import FULL, ChangeGate, GateDecision
from dicface.pipeline.detect.regions import DetectPlan, DetectRequest, Region
from dicface.pipeline.frame_context import FrameContext
from dicface.pipeline.fusion import TemporalFusion
from dicface.pipeline.io import VideoSink, fit_size, to_8bit
from dicface.pipeline.report import RunReport
from dicface.pipeline.runtime.reader import Source
from dicface.pipeline.runtime.writer import WRITE_QUEUE, BackgroundWriter
from dicface.pipeline.temporal import FaceObservation, TemporalMeter
from dicface.pipeline.track import Tracker
from dicface.pipeline.tracks_file import track_record
from dicface.pipeline.types import Detection, EnhancedFace, FaceCrop, Frame, TrackState

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class RunOptions:
    window: int = 8  # frames whose faces go to DIC in one batch
    # DIC's landmarks update the tracker (one window late, see the module notes). Off by default: on generated clips
    # of real faces (16-26 px, known motion) it raised the tracked landmarks' jitter from 0.0126 to 0.0151 and
    # their NME from 0.0338 to 0.0347 (0.0130 / 0.0340 with a 4x weaker DIC measurement).
    feedback: bool = False
    upscale: float = 1.0  # whole-frame scale of the output
    preview: bool = False  # output = input | enhanced, side by side
    fusion: FusionConfig = field(default_factory=FusionConfig)  # temporal fusion of each track's SR faces
    scene_cuts: CutConfig | None = field(default_factory=CutConfig)  # None: no scene-cut test
    measure: bool = False  # ground-truth-free temporal measures of the output, in the report

    def __post_init__(self) -> None:
        if self.window < 1 or not 1.0 <= self.upscale <= 8.0:
            raise ValueError(f"invalid run options: {self}")


def frames_held(options: RunOptions, lookahead: int, write_queue: int = WRITE_QUEUE) -> int:
    """The most decoded frames one stream holds at once, whatever the timing (a 720p frame is 2.8 MB), with
    ``lookahead`` frames decoded ahead (``Services.lookahead``) and the encoder's queue; a ``ReadAhead`` source adds
    its own (``pipeline.runtime.reader.READ_AHEAD`` + 1). Memory does not grow with the video's length.

    - decoded ahead of the tracker: up to ``lookahead + 1`` (one more is decoded while ``lookahead`` wait);
    - DIC windows: the one filling and the one in flight, ``2 * window`` (while one is finished, the next was just
      submitted; while a frame is decoded ahead, the filling window lacks at least that frame: ``2 * window - 1``);
    - the fusion's lookahead: ``delay`` frames of finished windows wait for their later faces;
    - the encoder: ``write_queue`` writes waiting and the one it is encoding (a frame handed over while the queue
      is full left the fusion's frames first, so it is counted there);
    - the temporal measures (``measure``): the previous frame, kept to pair with the next.
    """
    return lookahead + 2 * options.window + options.fusion.delay + write_queue + 1 + int(options.measure)


class Pending(Protocol[T_co]):
    def result(self) -> T_co: ...


@dataclass(frozen=True)
class Ready(Generic[T]):
    """A result computed already (the in-process services)."""

    value: T

    def result(self) -> T:
        return self.value


class Services(Protocol):
    """Where detection and DIC run. ``lookahead``: frames to decode ahead of the tracker."""

    lookahead: int

    def detect(self, request: DetectRequest) -> Pending[list[list[Detection]]]: ...

    def enhance(self, crops: list[FaceCrop]) -> Pending[list[EnhancedFace]]: ...


@dataclass
class _Window:
    """Frames tracked and aligned, waiting for DIC. ``last_landmarks``: the tracked landmarks of the last frame,
    by track id (the reference of the feedback); ``tracks``: each frame's confirmed tracks (temporal measures)."""

    frames: list[Frame] = field(default_factory=list)
    tracks: dict[int, list[TrackState]] = field(default_factory=dict)
    crops: list[FaceCrop] = field(default_factory=list)
    last_landmarks: dict[int, np.ndarray] = field(default_factory=dict)
    faces: Pending[list[EnhancedFace]] | None = None


class Sequencer:
    """Runs the stages on one stream, in order. ``enhance=False`` passes frames through (``--sr none``)."""

    def __init__(self, detector: DetectPlan, track_cfg: TrackConfig, aligner: Aligner, enhance: bool,
                 blender: Blender, options: RunOptions) -> None:
        self.detector, self.track_cfg, self.aligner = detector, track_cfg, aligner
        self.enhance, self.blender, self.options = enhance, blender, options

    def run(
        self,
        source: Source,
        sink: VideoSink,
        services: Services,
        tracks_out: IO[str] | None = None,
        progress: Callable[[RunReport], None] | None = None,
    ) -> RunReport:
        start = time.perf_counter()
        writer = BackgroundWriter(sink)  # encodes on its own thread, in order
        try:
            report = self._run(source, writer, services, tracks_out, progress)
            writer.finish()
        except BaseException:
            writer.cancel()  # nothing more is written; the caller aborts the sink
            raise
        report.seconds["encode"] = writer.busy_seconds
        report.retimed_frames = sink.retimed_frames
        report.dropped_streams = list(sink.dropped_streams)
        report.wall_seconds = time.perf_counter() - start
        return report

    def _run(
        self,
        source: Source,
        sink: BackgroundWriter,
        services: Services,
        tracks_out: IO[str] | None,
        progress: Callable[[RunReport], None] | None,
    ) -> RunReport:
        report = RunReport()
        tracker = Tracker(self.track_cfg)  # one per stream
        cuts = CutDetector(self.options.scene_cuts) if self.options.scene_cuts is not None else None
        gate = ChangeGate(self.detector.schedule) if self.detector.schedule.gate else None
        cut_frames: set[int] = set()
        fusion = TemporalFusion(self.options.fusion)
        context = FrameContext(self.aligner.frames, self.options.fusion.max_motion)  # multi-frame members
        waiting: dict[int, tuple[Frame, list[TrackState], bool]] = {}  # frames the fusion holds: tracks, cut?
        meter = TemporalMeter() if self.options.measure else None
        seen_tracks: set[int] = set()
        states: list[TrackState] = []
        routed: dict[int, int] = {}  # each enhanced track's member input size in the previous frame
        ahead: deque[tuple[Frame, DetectRequest | None, Pending[list[list[Detection]]] | None, GateDecision | None]]
        ahead = deque()
        window, in_flight = _Window(), deque[_Window]()

        def written(index: int) -> bool:
            """Frame ``index`` is output: not a warm-up frame or a lookahead frame of a part of a split file."""
            return index >= source.first_output and (source.stop_output is None or index < source.stop_output)

        def timed(stage: str, fn: Callable[[], T]) -> T:
            t = time.perf_counter()
            result = fn()
            report.seconds[stage] += time.perf_counter() - t
            return result

        def finish(done: _Window) -> None:
            """DIC's faces of a window: feedback to the tracker, then blend and encode its frames."""
            faces = timed("enhance", done.faces.result) if done.faces is not None else []
            report.faces_enhanced += sum(written(face.frame_index) for face in faces)
            if self.options.feedback:
                self._feed_back(tracker, done, faces)
            by_frame: dict[int, list[EnhancedFace]] = {}
            for face in faces:
                by_frame.setdefault(face.frame_index, []).append(face)
            for frame in done.frames:
                cut = frame.index in cut_frames
                cut_frames.discard(frame.index)
                ready = timed("fuse", fusion.flush) if cut else []  # nothing is carried across a cut
                ready += timed("fuse", lambda f=frame: fusion.push(f.index, by_frame.get(f.index, [])))
                waiting[frame.index] = (frame, done.tracks[frame.index], cut)
                for index, fused in ready:
                    output(*waiting.pop(index), fused)
            if progress:
                progress(report)

        def output(frame: Frame, tracks: list[TrackState], cut: bool, fused: list[EnhancedFace]) -> None:
            """Blend a frame's fused faces, measure it and hand it to the encoder (a lookahead frame: dropped)."""
            if not written(frame.index):
                return
            enhanced = timed("blend", lambda: self._blend(frame, fused))
            if meter is not None:
                if cut:
                    meter.reset()
                image = to_8bit(enhanced) if enhanced.dtype == np.uint16 else enhanced
                seen = [FaceObservation.of(s) for s in tracks]
                timed("measure", lambda: meter.add(frame.index, frame.image, image, seen))
            sink.write(frame, self._preview(frame, enhanced) if self.options.preview else enhanced)
            report.frames_out += 1

        def submit(full: _Window) -> None:
            if self.enhance and full.crops:
                full.faces = timed("enhance", lambda: services.enhance(full.crops))
                report.dic_calls += 1
            in_flight.append(full)
            while len(in_flight) > 1:
                finish(in_flight.popleft())

        frames = iter(source)
        exhausted, decoded = False, 0
        while True:
            while not exhausted and len(ahead) <= services.lookahead:
                frame = timed("decode", lambda: next(frames, None))
                if frame is None:
                    exhausted = True
                    break
                decoded += 1
                size = source.info.width, source.info.height
                if frame.image.shape[1::-1] != size:  # the stream changed resolution: keep the first one
                    deep = None if frame.deep is None else fit_size(frame.deep, *size)
                    frame = replace(frame, image=fit_size(frame.image, *size), deep=deep)
                    report.resized_frames += 1
                if written(frame.index):
                    report.frames_in += 1
                sink.write_packets(source.take_packets())
                request, pending = None, None
                # Full-frame passes need no tracks: sent at once. A stream's first frame always gets one (a
                # segment may start between the schedule's passes). The change gate may narrow a scheduled
                # pass to where the picture changed: those regions are searched with the tracked faces'.
                scheduled = self.detector.is_full(frame.index)
                decision = FULL
                if scheduled and gate is not None:
                    decision = timed("detect", lambda f=frame: gate.decide(f.index, f.image))
                if decoded == 1 or (scheduled and decision.full):
                    request = self.detector.full_request(frame.image)
                    pending = timed("detect", lambda r=request: services.detect(r))
                    report.full_searches += 1
                elif scheduled:
                    report.narrowed_searches += 1
                ahead.append((frame, request, pending, decision if scheduled else None))
            if not ahead:
                break
            frame, request, pending, decision = ahead.popleft()
            if cuts is not None and timed("track", lambda f=frame: cuts(f.image)):
                tracker.reset()  # a new shot: the old tracks' boxes mean nothing here; search the whole frame
                states = []
                cut_frames.add(frame.index)
                report.scene_cuts += int(written(frame.index))
                if request is None or pending is None:
                    request = self.detector.full_request(frame.image)
                    pending = timed("detect", lambda r=request: services.detect(r))
                    report.full_searches += 1
            changed: list[Region] = []
            if gate is not None and decision is not None:
                size = frame.image.shape[1], frame.image.shape[0]
                tracked = [(s.track_id, s.bbox) for s in states]
                changed = timed("detect", lambda d=decision, t=tracked, s=size: gate.regions(d, t, *s))
            if request is None or pending is None:
                request = self.detector.request(frame.image, [s.bbox for s in states], changed)
                pending = timed("detect", lambda r=request: services.detect(r))
            detections = timed("detect", lambda r=request, p=pending: self.detector.combine(r, p.result()))
            states = timed("track", lambda d=detections: tracker.update(d))
            if frame.index < source.first_output:
                if tracks_out is not None:
                    tracks_out.write(track_record(frame, states, warmup=True) + "\n")
                if self.enhance:  # the members and earlier crops the faces had, as in the whole run
                    crops = timed("align", lambda f=frame, s=states, m=routed: self.aligner(f, s, m))
                    routed = members(crops)
                    timed("align", lambda c=crops: context(c))
                continue
            if written(frame.index):
                seen_tracks.update(s.track_id for s in states if s.confirmed)
                if tracks_out is not None:
                    tracks_out.write(track_record(frame, states) + "\n")
            if self.enhance:
                crops = timed("align", lambda f=frame, s=states, m=routed: self.aligner(f, s, m))
                routed = members(crops)
                crops = timed("align", lambda c=crops: context(c))
                for crop in crops if written(frame.index) else ():
                    member = f"x{HR_SIZE // crop.lr.shape[0]}"
                    report.faces_by_member[member] = report.faces_by_member.get(member, 0) + 1
                window.crops += crops
            window.frames.append(frame)
            window.tracks[frame.index] = [s for s in states if s.confirmed]
            # Windows end on multiples of ``window`` frame indices: a segment's windows are those of a whole run.
            if len(window.frames) >= self.options.window or (frame.index + 1) % self.options.window == 0:
                window.last_landmarks = {s.track_id: s.landmarks for s in states if s.landmarks is not None}
                submit(window)
                window = _Window()
        if window.frames:
            submit(window)
        while in_flight:
            finish(in_flight.popleft())
        for index, fused in timed("fuse", fusion.flush):
            output(*waiting.pop(index), fused)
        sink.write_packets(source.take_packets())
        report.tracks = len(seen_tracks)
        report.corrupt_packets = source.corrupt_packets
        report.input_warning = source.stopped_early
        report.temporal = meter.summary() if meter is not None else None
        return report

    @staticmethod
    def _feed_back(tracker: Tracker, done: _Window, faces: list[EnhancedFace]) -> None:
        """Refine each track DIC saw in the window's last frame: its current landmarks plus DIC's correction."""
        if not done.frames:
            return
        last = done.frames[-1].index
        current = {s.track_id: s.landmarks for s in tracker.states() if s.landmarks is not None}
        for face in faces:
            if face.frame_index != last:
                continue
            then, now = done.last_landmarks.get(face.track_id), current.get(face.track_id)
            if then is None or now is None:
                tracker.refine(face.track_id, face.landmarks)
            else:
                tracker.refine(face.track_id, now + (face.landmarks - then))

    def _blend(self, frame: Frame, faces: list[EnhancedFace]) -> np.ndarray:
        """The output frame: uint8 RGB, or uint16 from a deep (more than 8-bit) input."""
        scale, image = self.options.upscale, frame.deep if frame.deep is not None else frame.image
        if not faces and scale == 1:
            return image
        return self.blender(image, [PasteFace(face.box, face.sr) for face in faces], scale)

    def _preview(self, frame: Frame, enhanced: np.ndarray) -> np.ndarray:
        """Input | enhanced, side by side."""
        image = frame.deep if frame.deep is not None else frame.image
        original = self.blender(image, [], self.options.upscale) if self.options.upscale != 1 else image
        return np.concatenate([original, enhanced], axis=1)


class StreamRunner:
    """A ``Sequencer`` with the ``Services`` it runs on: what ``enhance_file`` and jobs drive (``LocalRunner``,
    ``RayRunner``). ``run`` may be called for one stream after another, or from several threads at once where the
    services allow it."""

    def __init__(self, sequencer: Sequencer, services: Services) -> None:
        self.sequencer, self.services = sequencer, services
        self.options = sequencer.options

    def run(
        self,
        source: Source,
        sink: VideoSink,
        tracks_out: IO[str] | None = None,
        progress: Callable[[RunReport], None] | None = None,
    ) -> RunReport:
        return self.sequencer.run(source, sink, self.services, tracks_out, progress)

    def usage(self) -> dict[str, object]:
        """Per-pool work of the run; nothing in-process (no pools)."""
        return {}
