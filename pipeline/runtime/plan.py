"""What a run is, decided once from its configuration and its input and output: where the stages run (in this
process or on Ray actor pools), whether the input is a stream URL, and into how many parts one long file is cut.
The commands ask for a ``RunPlan`` and build the runner it names (``pipeline.runtime.build``); nothing else
decides these. ``RunMode`` holds what only the command knows (SR on or off, preview, measures, tracks file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dicface.configs.schema import SPLIT_AUTO_SECONDS, RunConfig, Runtime
from dicface.models.errors import InputError
from dicface.models.extras import installed
from dicface.pipeline.segments import SPLITTABLE_SUFFIXES
from dicface.pipeline.source import is_url


@dataclass(frozen=True)
class RunMode:
    """What the command decides: run DIC (else ``--sr none``), write input | output side by side, measure the
    output's temporal stability (a file's ``--report``; a live stream's would grow forever), write a tracks file."""

    sr: bool = True
    preview: bool = False
    measure: bool = False
    tracks: bool = False

    @property
    def needs_landmarks(self) -> bool:
        """68-point landmarks are used by DIC's crops and seeds, the temporal measures and the tracks file only."""
        return self.sr or self.measure or self.tracks


@dataclass(frozen=True)
class RunPlan:
    """``runtime``: local | ray; ``url``: the input is a stream URL; ``parts``: segments one file is cut into
    (1: whole), ``min_seconds``: a file shorter than this runs whole (``split: auto``); ``streams``: videos of a
    job run at once (sharing Ray's pools; one at a time in-process)."""

    runtime: Runtime
    url: bool = False
    parts: int = 1
    min_seconds: float = 0.0
    streams: int = 1


def default_workers() -> int:
    """Actors per Ray pool on this machine when none is asked for: one per two cores (each pool has its own)."""
    return max(1, (os.cpu_count() or 2) // 2)


def use_ray(cfg: RunConfig, many: bool) -> bool:
    """The ``runtime`` asked for, or by default Ray when a cluster is named, or for a job of many videos where Ray
    is installed (the ``ray`` extra; without it such a job runs in-process, one video after another)."""
    if cfg.runtime.runtime:
        return cfg.runtime.runtime == "ray"
    if cfg.runtime.address or os.environ.get("RAY_ADDRESS"):
        return True
    return many and installed("ray")


def plan_run(cfg: RunConfig, source: Path | str | None = None, output: Path | str | None = None,
             videos: int = 1) -> RunPlan:
    """The plan of a run of ``source`` into ``output`` (a job of ``videos`` videos: no source, no parts).
    ``split: N`` asks for N parts: an error where parts cannot run at once (not on Ray) or be joined (a URL, an
    image folder, another container)."""
    ray = use_ray(cfg, many=videos > 1)
    plan = RunPlan("ray" if ray else "local", url=source is not None and is_url(source),
                   streams=cfg.runtime.streams if ray and videos > 1 else 1)
    split = cfg.runtime.split
    if source is None or output is None or split == 1:
        return plan
    splittable = (not plan.url and Path(source).is_file() and Path(output).suffix.lower() in SPLITTABLE_SUFFIXES)
    if split == "auto":
        parts = (cfg.runtime.workers or default_workers()) // 2
        ok = ray and parts > 1 and splittable
        return RunPlan(plan.runtime, plan.url, parts, SPLIT_AUTO_SECONDS) if ok else plan
    assert isinstance(split, int)
    if not ray:
        raise InputError("--split runs the parts at once on Ray actor pools: add --runtime ray")
    if not splittable:
        raise InputError(f"--split cuts a video file into {', '.join(SPLITTABLE_SUFFIXES)} parts; "
                         f"{source} -> {output} cannot be split (use --split 1)")
    return RunPlan(plan.runtime, plan.url, split)
