"""What a run reports: counts, faces per DIC member, dropped streams and frames, temporal measures, time per
stage (``RunReport``, the JSON of ``--report``), the one report of a file run in parts (``merge_reports``), and
the work of a Ray run's actor pools (``PoolUsage``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from dicface.pipeline.temporal import TemporalSummary

STAGES = ("decode", "detect", "track", "align", "enhance", "fuse", "blend", "encode", "measure")


def _member_order(item: tuple[str, int]) -> tuple[int, str]:
    """Members by scale, largest first (x8, x4, x2, then x2/192 after x2)."""
    return -int(item[0][1:].split("/")[0]), item[0]


@dataclass
class RunReport:
    frames_in: int = 0
    frames_out: int = 0
    faces_enhanced: int = 0
    faces_by_member: dict[str, int] = field(default_factory=dict)  # crops routed to each DIC member ("x4": n)
    dic_calls: int = 0  # windows sent to DIC (faces_enhanced / dic_calls: the batch DIC got)
    full_searches: int = 0  # frames searched whole for faces
    narrowed_searches: int = 0  # scheduled full-frame searches the change gate narrowed to where the picture changed
    tracks: int = 0
    corrupt_packets: int = 0
    resized_frames: int = 0  # frames of another size than the stream's first, scaled to it
    retimed_frames: int = 0  # frames whose timestamp went back or repeated, moved after the previous one
    # input streams the output does not carry (the container cannot hold them, or no output does: data streams,
    # further video streams), each named with what would keep it where something would (``pipeline.sink``)
    dropped_streams: list[str] = field(default_factory=list)
    dropped_frames: int = 0  # live streams: frames dropped to keep the latency bounded
    reconnects: int = 0  # live streams: times the source was reopened
    input_warning: str | None = None  # e.g. a damaged tail: the frames before it were processed
    scene_cuts: int = 0  # shots that began after the first (tracks and fusion restarted)
    temporal: TemporalSummary | None = None  # RunMode.measure: warping error, appearance change, jitter
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    wall_seconds: float = 0.0

    def ms_per_frame(self) -> dict[str, float]:
        return {k: round(1000 * v / max(self.frames_in, 1), 2) for k, v in self.seconds.items()}

    def line(self) -> str:
        """``16/16 frames, 30 faces enhanced (x4 20, x2 10), 2 tracks, 13.2 frames/s``."""
        members = ", ".join(f"{k} {v}" for k, v in sorted(self.faces_by_member.items(), key=_member_order))
        return (f"{self.frames_out}/{self.frames_in} frames, {self.faces_enhanced} faces enhanced"
                f"{f' ({members})' if members else ''}, {self.tracks} tracks, {self.fps} frames/s")

    @property
    def fps(self) -> float | None:
        """Frames written per second of the run's wall time (None before it is known)."""
        return round(self.frames_out / self.wall_seconds, 2) if self.wall_seconds else None

    def problems(self) -> str | None:
        """What went wrong with the input that the user should know of, in one line (None: nothing)."""
        problems = [self.input_warning] if self.input_warning else []
        if self.corrupt_packets:
            problems.append(f"{self.corrupt_packets} corrupt packets skipped")
        if self.resized_frames:
            problems.append(f"the resolution changed: {self.resized_frames} frames scaled to the first frame's size")
        if self.dropped_streams:
            problems.append(f"left out of the output: {'; '.join(self.dropped_streams)}")
        if self.retimed_frames:
            problems.append(f"timestamps went back: {self.retimed_frames} frames moved after the frame before")
        return "; ".join(problems) or None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["temporal"] = self.temporal.to_dict() if self.temporal is not None else None
        data["ms_per_frame"] = self.ms_per_frame()
        data["fps"] = self.fps
        return data


def merge_reports(reports: list[RunReport]) -> RunReport:
    """One report for the parts of a file: counts and stage seconds summed (``tracks`` and ``wall_seconds`` are
    the caller's: tracks continue across parts, and the parts ran at once)."""
    merged = RunReport()
    for report in reports:
        for f in fields(RunReport):
            value = getattr(report, f.name)
            if isinstance(value, dict):  # seconds per stage, faces per member
                for key, amount in value.items():
                    getattr(merged, f.name)[key] = getattr(merged, f.name).get(key, 0) + amount
            elif isinstance(value, int) and f.name != "tracks":
                setattr(merged, f.name, getattr(merged, f.name) + value)
            elif isinstance(value, list):  # dropped streams: each named once
                names = getattr(merged, f.name)
                names += [item for item in value if item not in names]
            elif isinstance(value, TemporalSummary):
                merged.temporal = value if merged.temporal is None else merged.temporal.merge(value)
        merged.input_warning = merged.input_warning or report.input_warning
    return merged


@dataclass(frozen=True)
class PoolUsage:
    """A Ray pool's work over a run: busy % of its actors' time, calls, items, retries and the nodes it ran on."""

    actors: int
    busy_percent: float
    busy_seconds: float  # summed over the actors
    calls: int
    items: int
    retries: int
    nodes: list[str]


def usage_dicts(usage: dict[str, PoolUsage]) -> dict[str, dict[str, object]]:
    """The pools' usage as the ``--report`` JSON holds it."""
    return {name: asdict(u) for name, u in usage.items()}


def usage_line(usage: dict[str, PoolUsage]) -> str:
    """``detect busy 40.1% (2 actors, 0 retried), enhance busy ...``."""
    return ", ".join(f"{name} busy {u.busy_percent}% ({u.actors} actors, {u.retries} retried)"
                     for name, u in usage.items())
