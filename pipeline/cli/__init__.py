"""``dicface`` command line: parse (``parser``) -> resolve the run configuration (``common.run_config``) -> plan
the run (``pipeline.runtime.plan``) -> open its runner (``pipeline.runtime.build``) -> run -> print; the commands'
modules: ``video``, ``faces``, ``bench``, ``train``. This package decides nothing about a run's runtime and does
no measuring or arithmetic; it is the only code that prints errors.

Exit codes: 0 success; 1 other user error; 2 bad input or arguments; 3 weights problem; 5 an output cannot be
written (disk full, permission, read-only, name too long); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
Anything that is not a DicfaceError is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from dicface.models.errors import DicfaceError
from dicface.pipeline.cli.bench import cmd_bench
from dicface.pipeline.cli.common import configure_logging
from dicface.pipeline.cli.faces import cmd_demo, cmd_eval, cmd_export_weights, cmd_models, cmd_sr
from dicface.pipeline.cli.parser import build_parser
from dicface.pipeline.cli.train import cmd_prepare_data, cmd_train
from dicface.pipeline.cli.video import cmd_config, cmd_enhance, cmd_eval_video, cmd_stream
from dicface.pipeline.runtime.signals import Termination

__all__ = ["COMMANDS", "build_parser", "main"]

# Ray's C++ failure-signal handler takes SIGTERM too (``pipeline.runtime.signals``): it is turned off here, before
# Ray is imported. The command line owns its process's signals.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")


COMMANDS = {
    "sr": cmd_sr,
    "enhance": cmd_enhance,
    "stream": cmd_stream,
    "eval": cmd_eval,
    "eval-video": cmd_eval_video,
    "config": cmd_config,
    "bench": cmd_bench,
    "demo": cmd_demo,
    "prepare-data": cmd_prepare_data,
    "train": cmd_train,
    "export-weights": cmd_export_weights,
    "models": cmd_models,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    with Termination() as termination:
        try:
            if getattr(args, "threads", None):
                import torch

                torch.set_num_threads(args.threads)
            return COMMANDS[args.command](args)
        except DicfaceError as exc:
            if args.debug:
                raise
            print(f"dicface: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:  # Terminated too
            termination.interrupted()
            if termination.terminated:
                print("dicface: terminated (SIGTERM); unfinished outputs removed", file=sys.stderr)
                return 143
            print("dicface: interrupted; unfinished outputs removed", file=sys.stderr)
            return 130
