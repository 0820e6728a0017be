"""``dicface`` command line: parse (``parser``) -> resolve the run configuration (``common``) -> build and run
(``pipeline.runtime.build``, the commands' modules: ``video``, ``faces``, ``bench``, ``train``) -> print. This
package is the only code that prints errors.

Exit codes: 0 success; 1 other user error; 2 bad input or arguments; 3 weights problem; 5 an output cannot be
written (disk full, permission, read-only, name too long); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
Anything that is not a DicfaceError is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from models.errors import DicfaceError
from pipeline.cli.bench import cmd_bench
from pipeline.cli.faces import cmd_demo, cmd_eval, cmd_export_weights, cmd_models, cmd_sr
from pipeline.cli.parser import build_parser
from pipeline.cli.train import cmd_prepare_data, cmd_train
from pipeline.cli.video import cmd_config, cmd_enhance, cmd_eval_video, cmd_stream

__all__ = ["COMMANDS", "build_parser", "main"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: outputs abandoned, temporary files removed, Ray actors ended."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


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
    import signal
    import threading

    args = build_parser().parse_args(argv)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
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
    except Terminated:
        print("dicface: terminated (SIGTERM); unfinished outputs removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("dicface: interrupted; unfinished outputs removed", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
