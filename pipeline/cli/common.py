"""What the commands share: the run configuration from ``--config`` and the flags, the runner, reports, logging."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from dicface.configs.schema import (
    RunConfig,
    load_config,
)
from dicface.models.progress import Bar

if TYPE_CHECKING:  # the CLI imports torch and the video code only when a command needs them
    from dicface.pipeline.report import PoolUsage
    from dicface.pipeline.runtime.plan import RunMode, RunPlan
    from dicface.pipeline.runtime.sequencer import StreamRunner


def terminal_bars(**options: object) -> Bar:
    """The CLI's progress bars (``models.progress``): tqdm on stderr, off where progress lines are (``--quiet``)."""
    from tqdm import tqdm

    quiet = not logging.getLogger("dicface").isEnabledFor(logging.INFO)
    return tqdm(file=sys.stderr, **({"disable": True} if quiet else {}), **options)


def run_config(args: argparse.Namespace) -> RunConfig:
    """``--config`` (default ``configs/default.yaml``) with the configuration flags that were given on top (their
    ``config:section.key`` values; None: not given), checked by type and range, its encoder against this FFmpeg."""
    from dicface.pipeline.sink import check_encoder

    overrides: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if dest.startswith("config:") and value is not None:
            *sections, key = dest.removeprefix("config:").split(".")
            node = overrides
            for section in sections:
                node = node.setdefault(section, {})
            node[key] = value
    cfg = load_config(getattr(args, "config", None), overrides)
    check_encoder(cfg.encode)
    return cfg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record is written (a caller or test may have replaced it since)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """What a user sees of the library's ``logging``: the ``dicface`` loggers' INFO and up on stderr as plain lines
    (DEBUG with ``--verbose``; WARNING and up with ``--quiet``, which also turns progress bars off). Other
    libraries' loggers are left as they are."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger("dicface")
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.propagate = False


def run_mode(args: argparse.Namespace) -> RunMode:
    """What the command's flags decide for the runner: SR on or off, preview, temporal measures (a file's
    ``--report``) and a tracks file."""
    from dicface.pipeline.runtime.plan import RunMode

    measure = args.command == "enhance" and args.report is not None and args.temporal == "on"
    return RunMode(sr=getattr(args, "sr", "dic") == "dic", preview=getattr(args, "preview", None) is not None,
                   measure=measure, tracks=getattr(args, "tracks", None) is not None)


def open_run(args: argparse.Namespace, cfg: RunConfig, plan: RunPlan) -> StreamRunner:
    """The runner of the run ``plan`` describes, in the mode the command's flags ask for (use it with ``with``)."""
    from dicface.pipeline.runtime.build import open_runner

    return open_runner(cfg, run_mode(args), plan.runtime)


def write_report(args: argparse.Namespace, summary: dict[str, object], usage: dict[str, PoolUsage]) -> None:
    """The pools' line (Ray runs) and the ``--report`` JSON, written atomically."""
    from dicface.models.atomic import atomic_output
    from dicface.pipeline.report import usage_dicts, usage_line

    if usage:
        print(usage_line(usage))
    if args.report:
        pools = usage_dicts(usage)
        with atomic_output(args.report) as tmp:
            tmp.write_text(json.dumps(summary | ({"pools": pools} if pools else {}), indent=2, default=str))
