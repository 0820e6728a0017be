"""Runners from a run configuration: the one place that turns a ``RunConfig`` into stages, for both runtimes.

``build_runner`` picks the runtime (``use_ray``) and makes a ``LocalRunner`` (stages in this process) or a
``RayRunner`` (detection and DIC on actor pools, which build their stages where they run from the configuration).
What only the command knows -- SR on or off, a side-by-side preview, whether to measure -- comes as a ``RunMode``.
Messages for the user (how many actors) go to ``logging``; the weights line is ``load_enhancer``'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicface.configs.schema import RunConfig
from dicface.models.extras import installed
from dicface.pipeline.align import Aligner
from dicface.pipeline.blend import Blender
from dicface.pipeline.cuts import CutConfig
from dicface.pipeline.detect.regions import DetectPlan, ScheduledDetector
from dicface.pipeline.detect.spec import DetectorSpec
from dicface.pipeline.runtime.local import LocalRunner
from dicface.pipeline.runtime.sequencer import RunOptions, StreamRunner

if TYPE_CHECKING:  # torch and Ray are loaded only when a runner needs them
    from dicface.pipeline.enhance import Enhancer
    from dicface.pipeline.runtime.ray_runtime import RayRunner

logger = logging.getLogger(__name__)


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


def run_options(cfg: RunConfig, mode: RunMode) -> RunOptions:
    e = cfg.enhance
    return RunOptions(window=e.window, feedback=e.feedback, upscale=e.upscale, preview=mode.preview,
                      fusion=e.fusion, scene_cuts=CutConfig() if e.scene_cuts else None, measure=mode.measure)


def detector_spec(cfg: RunConfig, mode: RunMode | None = None) -> DetectorSpec:
    """The detector of the configuration; 68-point landmarks unless ``mode`` says nothing uses them."""
    d = cfg.detect
    return DetectorSpec(d.detector, d.scale, Path(d.model) if d.model else None,
                        landmarks=mode is None or mode.needs_landmarks)


def member_frames(cfg: RunConfig) -> dict[int, int]:
    """Frames each DIC member of a run takes, by input size (read off cards or shapes; no model is built)."""
    from dicface.models.registry import family

    return {r.config.input_size: r.config.frames for r in family(cfg.model.weights, cfg.model.scale)}


def local_runner(cfg: RunConfig, mode: RunMode, enhancer: Enhancer | None) -> LocalRunner:
    """Every stage in this process; ``enhancer`` None passes frames through (``--sr none``)."""
    detector = ScheduledDetector(detector_spec(cfg, mode).build(), cfg.detect.schedule())
    aligner = Aligner(cfg.align, enhancer.input_sizes, enhancer.frames) if enhancer else Aligner(cfg.align)
    return LocalRunner(detector, cfg.track, aligner, enhancer, Blender(cfg.blend), run_options(cfg, mode))


def ray_runner(cfg: RunConfig, mode: RunMode) -> RayRunner:
    """Detection and DIC on Ray actor pools as the ``runtime`` section says; starts the pools."""
    from dicface.pipeline.runtime.ray_runtime import RayOptions, RayRunner, default_workers

    r = cfg.runtime
    options = RayOptions(
        address=r.address, workers=r.workers or default_workers(), cpus_per_actor=r.cpus_per_actor,
        gpus_per_actor=r.gpus_per_actor, max_wait_ms=r.max_wait_ms, detect_resources=r.detect_resources or {},
        dic_resources=r.dic_resources or {})
    frames = member_frames(cfg)
    logger.info("Ray runtime: %d detection + %d DIC actors%s", options.workers, options.workers if mode.sr else 0,
                f" on {options.address}" if options.address else "")
    return RayRunner(DetectPlan(cfg.detect.schedule()), detector_spec(cfg, mode), cfg.track,
                     Aligner(cfg.align, tuple(frames), frames), (cfg, cfg.enhance.seed) if mode.sr else None,
                     Blender(cfg.blend), run_options(cfg, mode), options)


def use_ray(cfg: RunConfig, many: bool) -> bool:
    """The ``runtime`` asked for, or by default Ray when a cluster is named, or for a job of many videos where Ray
    is installed (the ``ray`` extra; without it such a job runs in-process, one video after another)."""
    if cfg.runtime.runtime:
        return cfg.runtime.runtime == "ray"
    if cfg.runtime.address or os.environ.get("RAY_ADDRESS"):
        return True
    return many and installed("ray")


def build_runner(cfg: RunConfig, mode: RunMode, stack: contextlib.ExitStack, many: bool) -> StreamRunner:
    """The runner for a run of one video (``many``: a job of several); a Ray runner's actors end with ``stack``."""
    if use_ray(cfg, many):
        return stack.enter_context(ray_runner(cfg, mode))
    if not mode.sr:
        return local_runner(cfg, mode, None)
    from dicface.pipeline.enhance import load_enhancer

    return local_runner(cfg, mode, load_enhancer(cfg)[0])
