"""Ctrl-C and SIGTERM during training: stop at the step reached, with that step's state on disk.

Why this needs care: the train step donates the model's and the optimizer's buffers
(:func:`restore_cli.train.loop.make_train_step`), and ``nnx.jit`` writes the new arrays back into
the Python objects after the compiled call returns. A KeyboardInterrupt raised between the two
leaves the model holding deleted arrays, or some variables updated and others not, and such a
state must never reach the resumable checkpoint. So while a compiled step is dispatched (a few
microseconds: the step itself runs asynchronously on the device) :class:`HeldSignals` holds
SIGINT and SIGTERM and delivers them right after, to the handlers that were in place. The first
call, which compiles for seconds to minutes, is not held (Ctrl-C must stay prompt); a stop that
lands inside it saves nothing, which loses nothing, since no step was taken yet.

Before this (2026-11-28), a stop kept only the state of the last ``--checkpoint-every`` step:
up to 19 steps of 20 s each lost for the ``cr6`` models on a CPU.
"""

from __future__ import annotations

import signal
import threading

#: What stops a training run: Ctrl-C and ``kill`` / ``timeout`` / a scheduler.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class HeldSignals:
    """``with HeldSignals(): ...`` - SIGINT / SIGTERM arriving inside are delivered on leaving it.

    Signals set to be ignored stay ignored, and handlers not set from Python (``getsignal``
    returns None) are left alone. Outside the main thread, where Python cannot set handlers
    and no signal handler runs anyway, it does nothing.
    """

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self._caught: list[int] = []

    def _hold(self, signum: int, frame: object) -> None:
        self._caught.append(signum)

    def __enter__(self) -> HeldSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                handler = signal.getsignal(sig)
                if handler is not None and handler is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._hold)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        caught, self._caught = dict.fromkeys(self._caught), []
        for signum in caught:  # to the restored handler: KeyboardInterrupt, Terminated, or the default
            signal.raise_signal(signum)
