"""How a run ends on a signal. In the main thread, ``Termination`` turns the first SIGTERM into what Ctrl-C does
(``Terminated``, a ``KeyboardInterrupt``: outputs abandoned, temporary files removed); once the run is
interrupted, ``interrupted()`` ignores further signals, so they cannot cut the clean-up short (temporary files,
Ray's actors and processes) nor the exit, and ends this process's Ray. A live stream instead finishes what it has
on its first signal (``finish_on_signals``).

Ray's C++ failure-signal handler takes SIGTERM too, and its uninstall in ``ray.shutdown()`` resets SIGTERM to the
default action: a SIGTERM during the clean-up would then kill the process halfway, leaving Ray's processes behind.
The command line turns it off before Ray is imported (``RAY_DISABLE_FAILURE_SIGNAL_HANDLER``, ``pipeline.cli``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: outputs abandoned, temporary files removed, Ray actors and Ray ended."""


class Termination:
    """``with Termination() as t:`` around a run in the main thread (elsewhere it does nothing); ``t.terminated``:
    a SIGTERM arrived. Signal handlers are restored on exit unless the process is exiting on SIGTERM (then signals
    stay ignored: Python does not restore the default for those at its finalisation)."""

    def __init__(self) -> None:
        self.terminated = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Termination:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
            signal.signal(signal.SIGTERM, self._terminate)
        return self

    def _terminate(self, _signum: int, _frame: object) -> None:
        self.terminated = True
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated

    def interrupted(self) -> None:
        """The run was interrupted (Ctrl-C or SIGTERM; Ray turns SIGTERM into a plain KeyboardInterrupt inside
        ``ray.get``): ignore further signals and end this process's Ray (actors, and the local cluster it started)
        before the process exits, with the signals kept ignored (Ray's exit hook would run after the handlers
        are restored)."""
        for sig in self._previous:
            signal.signal(sig, signal.SIG_IGN)
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()
            for sig in self._previous:  # again, where the environment turned Ray's handler back on
                signal.signal(sig, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items() if not self.terminated else ():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def finish_on_signals(stop: threading.Event) -> Iterator[None]:
    """A live stream's: the first Ctrl-C or SIGTERM sets ``stop`` (the stream ends what it has and writes its
    output), a second one ends the process at once. Handlers are restored on exit."""

    def on_signal(signum: int, _frame: object) -> None:
        print(f"\ndicface: {signal.Signals(signum).name}: finishing the stream", file=sys.stderr)
        stop.set()
        signal.signal(signum, signal.SIG_DFL)

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
