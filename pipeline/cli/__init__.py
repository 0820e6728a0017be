"""``dicface`` command line: parse (``parser``) -> resolve the run configuration (``common``) -> build and run
(``pipeline.runtime.build``, the commands' modules: ``video``, ``faces``, ``bench``, ``train``) -> print. This
package is the only code that prints errors.

Exit codes: 0 success; 1 other user error; 2 bad input or arguments; 3 weights problem; 5 an output cannot be
written (disk full, permission, read-only, name too long); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
Anything that is not a DicfaceError is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence

from dicface.models.errors import DicfaceError
from dicface.pipeline.cli.bench import cmd_bench
from dicface.pipeline.cli.common import configure_logging
from dicface.pipeline.cli.faces import cmd_demo, cmd_eval, cmd_export_weights, cmd_models, cmd_sr
from dicface.pipeline.cli.parser import build_parser
from dicface.pipeline.cli.train import cmd_prepare_data, cmd_train
from dicface.pipeline.cli.video import cmd_config, cmd_enhance, cmd_eval_video, cmd_stream

__all__ = ["COMMANDS", "build_parser", "main"]

# Ray's C++ failure-signal handler (stack traces of crashes, in this process and the embedded Ray's workers) takes
# SIGTERM too, and its uninstall in ray.shutdown() resets SIGTERM to the default action: a SIGTERM during the
# clean-up of a terminated run would then kill the process halfway, leaving Ray's processes behind. Ray reads this
# when it is imported, so it is set here, before; the command line owns its process's signals.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: outputs abandoned, temporary files removed, Ray actors and Ray ended."""


_terminated = threading.Event()  # a SIGTERM arrived during this ``main``


def _terminate(_signum: int, _frame: object) -> None:
    """The first SIGTERM stops the run as Ctrl-C does; signals after it (SIGTERM or Ctrl-C) are ignored, so they
    cannot cut the clean-up short (temporary files, Ray's actors and processes) nor the exit: ignored by the
    operating system (SIG_IGN), as Python does not restore the default for those at its finalisation."""
    _terminated.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated


def _stop_ray() -> None:
    """End this process's Ray (actors, and the local cluster it started) before exiting on a signal, with SIGTERM and
    SIGINT kept ignored (see ``RAY_DISABLE_FAILURE_SIGNAL_HANDLER`` above): Ray's own exit hook would run after the
    handlers are restored."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
        for sig in (signal.SIGINT, signal.SIGTERM):  # again, where the environment turned Ray's handler back on
            signal.signal(sig, signal.SIG_IGN)


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
    in_main = threading.current_thread() is threading.main_thread()
    _terminated.clear()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    if in_main:
        signal.signal(signal.SIGTERM, _terminate)
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
    except KeyboardInterrupt:  # Terminated too, which Ray turns into a plain KeyboardInterrupt inside ray.get
        for sig in previous:  # nothing cuts the rest of the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        _stop_ray()
        if _terminated.is_set():
            print("dicface: terminated (SIGTERM); unfinished outputs removed", file=sys.stderr)
            return 143
        print("dicface: interrupted; unfinished outputs removed", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items() if not _terminated.is_set() else ():  # terminated: exiting, ignoring
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
