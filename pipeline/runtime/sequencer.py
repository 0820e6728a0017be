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

The sequencer holds a run's stages (``Sequencer``, built from the ``RunConfig``); each stream's state and its
per-frame flow, one method per stage, are a ``_Stream``. Per stream, in frame order: a scene-cut test before
tracking (a cut drops every track), each track's earlier crops for the multi-frame DIC members
(``pipeline.frame_context``), temporal fusion of each track's SR faces after DIC (``pipeline.fusion``) and, when
asked, the ground-truth-free temporal measures of the output (``pipeline.temporal``, for ``--report``).

A part of a split file (``pipeline.segments``) is a stream whose frames before ``source.first_output`` only warm
the tracker up (detected and tracked, not written), and whose frames from ``source.stop_output`` on only give the
fusion its lookahead (enhanced, not written). So that a part is computed as the whole run would be: a
stream's first frame always gets a full-frame detection pass, and windows end on multiples of ``window`` frame
indices rather than counting from the stream's first frame.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import IO, Generic, Protocol, TypeVar

import numpy as np

from dicface.configs.model import DICConfig
from dicface.configs.schema import EnhanceConfig, RunConfig
from dicface.pipeline.align import Aligner, members
from dicface.pipeline.blend import Blender, PasteFace
from dicface.pipeline.colour import to_8bit
from dicface.pipeline.cuts import CutConfig, CutDetector
from dicface.pipeline.detect.gate import FULL, ChangeGate, GateDecision
from dicface.pipeline.detect.regions import DetectPlan, DetectRequest, Region
from dicface.pipeline.frame_context import FrameContext
from dicface.pipeline.fusion import TemporalFusion
from dicface.pipeline.report import PoolUsage, RunReport
from dicface.pipeline.runtime.plan import RunMode
from dicface.pipeline.runtime.reader import Source
from dicface.pipeline.runtime.writer import WRITE_QUEUE, BackgroundWriter
from dicface.pipeline.sink import VideoSink
from dicface.pipeline.source import StreamInfo, fit_size
from dicface.pipeline.temporal import FaceObservation, TemporalMeter
from dicface.pipeline.track import Tracker
from dicface.pipeline.tracks_file import track_record
from dicface.pipeline.types import Detection, EnhancedFace, FaceCrop, Frame, TrackState

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


def frames_held(enhance: EnhanceConfig, measure: bool, lookahead: int, write_queue: int = WRITE_QUEUE) -> int:
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
    return lookahead + 2 * enhance.window + enhance.fusion.delay + write_queue + 1 + int(measure)


class Pending(Protocol[T_co]):
    def result(self) -> T_co: ...


@dataclass(frozen=True)
class Ready(Generic[T]):
    """A result computed already (the in-process services)."""

    value: T

    def result(self) -> T:
        return self.value


class Services(Protocol):
    """Where detection and DIC run (``LocalServices``, ``RayServices``). ``lookahead``: frames to decode ahead of
    the tracker; ``members``: each DIC member's configuration, by input size (empty without DIC)."""

    lookahead: int
    members: Mapping[int, DICConfig]

    def detect(self, request: DetectRequest) -> Pending[list[list[Detection]]]: ...

    def enhance(self, crops: list[FaceCrop]) -> Pending[list[EnhancedFace]]: ...

    def usage(self) -> dict[str, PoolUsage]: ...

    def queue_line(self) -> str: ...

    def close(self) -> None: ...


@dataclass
class _Window:
    """Frames tracked and aligned, waiting for DIC. ``last_landmarks``: the tracked landmarks of the last frame,
    by track id (the reference of the feedback); ``tracks``: each frame's confirmed tracks (temporal measures)."""

    frames: list[Frame] = field(default_factory=list)
    tracks: dict[int, list[TrackState]] = field(default_factory=dict)
    crops: list[FaceCrop] = field(default_factory=list)
    last_landmarks: dict[int, np.ndarray] = field(default_factory=dict)
    faces: Pending[list[EnhancedFace]] | None = None


# A frame decoded ahead: its full-frame search (request and pending answer) if it got one, and the gate's decision
# on a scheduled frame.
_Ahead = tuple[Frame, DetectRequest | None, Pending[list[list[Detection]]] | None, GateDecision | None]


class Sequencer:
    """A run's stages, as its configuration says; ``run`` takes one stream through them, in order. ``members``:
    the DIC members' configurations by input size (``Services.members``); ``mode.sr`` False passes frames through
    (``--sr none``)."""

    def __init__(self, cfg: RunConfig, mode: RunMode, members: Mapping[int, DICConfig]) -> None:
        self.enhance, self.mode, self.track_cfg = cfg.enhance, mode, cfg.track
        self.detector = DetectPlan(cfg.detect)
        frames = {size: c.frames for size, c in members.items()}
        self.aligner = Aligner(cfg.align, tuple(members), frames) if members else Aligner(cfg.align)
        self.member_names = {size: c.name for size, c in members.items()}
        self.blender = Blender(cfg.blend)

    def output_info(self, info: StreamInfo) -> StreamInfo:
        """The output stream of a run of ``info``: scaled by ``upscale``, twice as wide for a side-by-side preview."""
        width, height = round(info.width * self.enhance.upscale), round(info.height * self.enhance.upscale)
        return replace(info, width=width * (2 if self.mode.preview else 1), height=height)

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
            report = _Stream(self, source, writer, services, tracks_out, progress).run()
            writer.finish()
        except BaseException:
            writer.cancel()  # nothing more is written; the caller aborts the sink
            raise
        report.seconds["encode"] = writer.busy_seconds
        report.retimed_frames = sink.retimed_frames
        report.dropped_streams = list(sink.dropped_streams)
        report.wall_seconds = time.perf_counter() - start
        return report

    def blend(self, frame: Frame, faces: list[EnhancedFace]) -> np.ndarray:
        """The output frame: uint8 RGB, or uint16 from a deep (more than 8-bit) input."""
        scale, image = self.enhance.upscale, frame.deep if frame.deep is not None else frame.image
        if not faces and scale == 1:
            return image
        return self.blender(image, [PasteFace(face.box, face.sr) for face in faces], scale)

    def preview(self, frame: Frame, enhanced: np.ndarray) -> np.ndarray:
        """Input | enhanced, side by side."""
        image = frame.deep if frame.deep is not None else frame.image
        original = self.blender(image, [], self.enhance.upscale) if self.enhance.upscale != 1 else image
        return np.concatenate([original, enhanced], axis=1)


class _Stream:
    """One stream through a ``Sequencer``: the stream's state (tracker, change gate, scene cuts, DIC windows,
    fusion, measures) and one method per stage, called in frame order by ``run``."""

    def __init__(self, seq: Sequencer, source: Source, sink: BackgroundWriter, services: Services,
                 tracks_out: IO[str] | None, progress: Callable[[RunReport], None] | None) -> None:
        self.seq, self.source, self.sink, self.services = seq, source, sink, services
        self.tracks_out, self.progress = tracks_out, progress
        self.report = RunReport()
        self.tracker = Tracker(seq.track_cfg)
        self.cuts = CutDetector(CutConfig()) if seq.enhance.scene_cuts else None
        self.gate = ChangeGate(seq.detector.cfg) if seq.detector.cfg.gate else None
        self.fusion = TemporalFusion(seq.enhance.fusion)
        self.context = FrameContext(seq.aligner.frames, seq.enhance.fusion.max_motion)  # multi-frame members
        self.meter = TemporalMeter() if seq.mode.measure else None
        self.cut_frames: set[int] = set()
        self.waiting: dict[int, tuple[Frame, list[TrackState], bool]] = {}  # frames the fusion holds: tracks, cut?
        self.seen_tracks: set[int] = set()
        self.states: list[TrackState] = []
        self.routed: dict[int, int] = {}  # each enhanced track's member input size in the previous frame
        self.ahead: deque[_Ahead] = deque()
        self.window, self.in_flight = _Window(), deque[_Window]()
        self.decoded = 0

    def timed(self, stage: str, fn: Callable[..., T], *args: object) -> T:
        start = time.perf_counter()
        result = fn(*args)
        self.report.seconds[stage] += time.perf_counter() - start
        return result

    def written(self, index: int) -> bool:
        """Frame ``index`` is output: not a warm-up frame or a lookahead frame of a part of a split file."""
        return index >= self.source.first_output and (self.source.stop_output is None
                                                       or index < self.source.stop_output)

    def run(self) -> RunReport:
        frames, exhausted = iter(self.source), False
        while True:
            while not exhausted and len(self.ahead) <= self.services.lookahead:
                exhausted = not self.decode(frames)
            if not self.ahead:
                break
            self.step(*self.ahead.popleft())
        if self.window.frames:
            self.submit(self.window)
        while self.in_flight:
            self.finish(self.in_flight.popleft())
        for index, fused in self.timed("fuse", self.fusion.flush):
            self.output(*self.waiting.pop(index), fused)
        self.sink.write_packets(self.source.take_packets())
        report = self.report
        report.tracks = len(self.seen_tracks)
        report.corrupt_packets = self.source.corrupt_packets
        report.input_warning = self.source.stopped_early
        report.temporal = self.meter.summary() if self.meter is not None else None
        return report

    def decode(self, frames: Iterator[Frame]) -> bool:
        """Decode the next frame and send its full-frame search if it gets one; False after the last frame.
        Full-frame passes need no tracks: sent at once. A stream's first frame always gets one (a segment may start
        between the schedule's passes). The change gate may narrow a scheduled pass to where the picture changed:
        those regions are searched with the tracked faces' (``detect``)."""
        frame = self.timed("decode", next, frames, None)
        if frame is None:
            return False
        self.decoded += 1
        size = self.source.info.width, self.source.info.height
        if frame.image.shape[1::-1] != size:  # the stream changed resolution: keep the first one
            deep = None if frame.deep is None else fit_size(frame.deep, *size)
            frame = replace(frame, image=fit_size(frame.image, *size), deep=deep)
            self.report.resized_frames += 1
        if self.written(frame.index):
            self.report.frames_in += 1
        self.sink.write_packets(self.source.take_packets())
        request, pending = None, None
        scheduled = self.seq.detector.is_full(frame.index)
        decision = FULL
        if scheduled and self.gate is not None:
            decision = self.timed("detect", self.gate.decide, frame.index, frame.image)
        if self.decoded == 1 or (scheduled and decision.full):
            request, pending = self.full_search(frame.image)
        elif scheduled:
            self.report.narrowed_searches += 1
        self.ahead.append((frame, request, pending, decision if scheduled else None))
        return True

    def full_search(self, image: np.ndarray) -> tuple[DetectRequest, Pending[list[list[Detection]]]]:
        request = self.seq.detector.full_request(image)
        pending = self.timed("detect", self.services.detect, request)
        self.report.full_searches += 1
        return request, pending

    def step(self, frame: Frame, request: DetectRequest | None, pending: Pending[list[list[Detection]]] | None,
             decision: GateDecision | None) -> None:
        """A decoded frame, in order: scene-cut test, detection, tracking, then its crops into the DIC window."""
        if self.cuts is not None and self.timed("track", self.cuts, frame.image):
            self.tracker.reset()  # a new shot: the old tracks' boxes mean nothing here; search the whole frame
            self.states = []
            self.cut_frames.add(frame.index)
            self.report.scene_cuts += int(self.written(frame.index))
            if request is None or pending is None:
                request, pending = self.full_search(frame.image)
        detections = self.detect(frame, request, pending, decision)
        self.states = self.timed("track", self.tracker.update, detections)
        if frame.index < self.source.first_output:  # warm-up: the members and earlier crops of the whole run
            self.write_tracks(frame, warmup=True)
            if self.seq.mode.sr:
                self.align(frame)
            return
        if self.written(frame.index):
            self.seen_tracks.update(s.track_id for s in self.states if s.confirmed)
            self.write_tracks(frame)
        if self.seq.mode.sr:
            self.window.crops += self.align(frame)
        self.window.frames.append(frame)
        self.window.tracks[frame.index] = [s for s in self.states if s.confirmed]
        # Windows end on multiples of ``window`` frame indices: a segment's windows are those of a whole run.
        window = self.seq.enhance.window
        if len(self.window.frames) >= window or (frame.index + 1) % window == 0:
            self.window.last_landmarks = {s.track_id: s.landmarks for s in self.states if s.landmarks is not None}
            self.submit(self.window)
            self.window = _Window()

    def detect(self, frame: Frame, request: DetectRequest | None, pending: Pending[list[list[Detection]]] | None,
               decision: GateDecision | None) -> list[Detection]:
        """The frame's detections: its full-frame search, else its tracked faces' regions and, on a scheduled frame
        the gate narrowed, the regions where the picture changed."""
        plan = self.seq.detector
        changed: list[Region] = []
        if self.gate is not None and decision is not None:
            size = frame.image.shape[1], frame.image.shape[0]
            changed = self.timed("detect", self.gate.regions, decision, [(s.track_id, s.bbox) for s in self.states],
                                 *size)
        if request is None or pending is None:
            request = plan.request(frame.image, [s.bbox for s in self.states], changed)
            pending = self.timed("detect", self.services.detect, request)
        return self.timed("detect", _combine, plan, request, pending)

    def write_tracks(self, frame: Frame, warmup: bool = False) -> None:
        if self.tracks_out is not None:
            self.tracks_out.write(track_record(frame, self.states, warmup=warmup) + "\n")

    def align(self, frame: Frame) -> list[FaceCrop]:
        """The frame's DIC crops, each with its earlier crops for the multi-frame members; counted by member."""
        crops = self.timed("align", self.seq.aligner, frame, self.states, self.routed)
        self.routed = members(crops)
        crops = self.timed("align", self.context, crops)
        for crop in crops if self.written(frame.index) else ():
            member = self.seq.member_names[crop.lr.shape[0]]
            self.report.faces_by_member[member] = self.report.faces_by_member.get(member, 0) + 1
        return crops

    def submit(self, full: _Window) -> None:
        """A full window's crops to DIC; the window before it is finished (one window in flight)."""
        if self.seq.mode.sr and full.crops:
            full.faces = self.timed("enhance", self.services.enhance, full.crops)
            self.report.dic_calls += 1
        self.in_flight.append(full)
        while len(self.in_flight) > 1:
            self.finish(self.in_flight.popleft())

    def finish(self, done: _Window) -> None:
        """DIC's faces of a window: feedback to the tracker, then fuse, blend and encode its frames."""
        faces = self.timed("enhance", done.faces.result) if done.faces is not None else []
        self.report.faces_enhanced += sum(self.written(face.frame_index) for face in faces)
        if self.seq.enhance.feedback:
            _feed_back(self.tracker, done, faces)
        by_frame: dict[int, list[EnhancedFace]] = {}
        for face in faces:
            by_frame.setdefault(face.frame_index, []).append(face)
        for frame in done.frames:
            cut = frame.index in self.cut_frames
            self.cut_frames.discard(frame.index)
            ready = self.timed("fuse", self.fusion.flush) if cut else []  # nothing is carried across a cut
            ready += self.timed("fuse", self.fusion.push, frame.index, by_frame.get(frame.index, []))
            self.waiting[frame.index] = (frame, done.tracks[frame.index], cut)
            for index, fused in ready:
                self.output(*self.waiting.pop(index), fused)
        if self.progress:
            self.progress(self.report)

    def output(self, frame: Frame, tracks: list[TrackState], cut: bool, fused: list[EnhancedFace]) -> None:
        """Blend a frame's fused faces, measure it and hand it to the encoder (a lookahead frame: dropped)."""
        if not self.written(frame.index):
            return
        enhanced = self.timed("blend", self.seq.blend, frame, fused)
        if self.meter is not None:
            if cut:
                self.meter.reset()
            image = to_8bit(enhanced) if enhanced.dtype == np.uint16 else enhanced
            seen = [FaceObservation.of(s) for s in tracks]
            self.timed("measure", self.meter.add, frame.index, frame.image, image, seen)
        self.sink.write(frame, self.seq.preview(frame, enhanced) if self.seq.mode.preview else enhanced)
        self.report.frames_out += 1


def _combine(plan: DetectPlan, request: DetectRequest, pending: Pending[list[list[Detection]]]) -> list[Detection]:
    return plan.combine(request, pending.result())


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


class StreamRunner:
    """A run's ``Sequencer`` over its ``Services``: what ``enhance_file`` and jobs drive, built the same way for
    both runtimes (``pipeline.runtime.build.open_runner``). ``run`` may be called for one stream after another, or
    from several threads at once where the services allow it (Ray). ``close()`` (or ``with``) ends the services
    (a Ray runner's actors)."""

    def __init__(self, cfg: RunConfig, mode: RunMode, services: Services) -> None:
        self.services = services
        self.sequencer = Sequencer(cfg, mode, services.members)

    def run(
        self,
        source: Source,
        sink: VideoSink,
        tracks_out: IO[str] | None = None,
        progress: Callable[[RunReport], None] | None = None,
    ) -> RunReport:
        return self.sequencer.run(source, sink, self.services, tracks_out, progress)

    def usage(self) -> dict[str, PoolUsage]:
        """Per-pool work of the run (Ray); empty in-process."""
        return self.services.usage()

    def queue_line(self) -> str:
        """Calls waiting or running in each pool, e.g. ``detect 2 | enhance 1`` (Ray); empty in-process."""
        return self.services.queue_line()

    def close(self) -> None:
        self.services.close()

    def __enter__(self) -> StreamRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
