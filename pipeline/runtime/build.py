"""Runners from a run configuration: the one place that turns a ``RunConfig`` into a runner, for both runtimes.

A runner is a ``StreamRunner`` (the run's ``Sequencer``) over services: ``LocalServices`` (detection and DIC in
this process) or ``RayServices`` (actor pools, which build their stages where they run from the same
configuration). Which one comes from the run's plan (``pipeline.runtime.plan``); what only the command knows --
SR on or off, a side-by-side preview, measures, a tracks file -- comes as a ``RunMode``.
"""

from __future__ import annotations

from dicface.configs.schema import RunConfig, Runtime
from dicface.pipeline.runtime.plan import RunMode
from dicface.pipeline.runtime.sequencer import Services, StreamRunner


def open_runner(cfg: RunConfig, mode: RunMode | None = None, runtime: Runtime = "local") -> StreamRunner:
    """The runner of ``cfg`` on ``runtime`` (local | ray, ``RunPlan.runtime``); use it with ``with``: a Ray runner's
    actors end when it closes. ``mode`` None: DIC on, nothing else asked."""
    mode = RunMode() if mode is None else mode
    services: Services
    if runtime == "ray":
        from dicface.pipeline.runtime.ray_runtime import RayServices

        services = RayServices(cfg, mode)
    else:
        from dicface.pipeline.runtime.local import LocalServices

        services = LocalServices.load(cfg, mode)
    return StreamRunner(cfg, mode, services)
