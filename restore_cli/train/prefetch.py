"""Compute batches ahead, in step order, with errors re-raised in order.

The consumer (the training loop) gets ``(step, batch)`` pairs; a producer exception is
delivered at the position of the batch it concerns, so a bad image stops training at the
step that needed it, after every earlier step (and checkpoint) has happened.

Two producers, the same batches (a batch is a pure function of its step):

* ``workers=0``: one background thread. Right for a CPU run, where XLA already keeps every
  core busy with the step and a batch costs a small fraction of it.
* ``workers=N``: N forked worker processes, each computing whole batches. On a GPU the step
  takes milliseconds while drawing a batch of online damage takes tens to hundreds (the
  degrade engine is numpy and Python, one core per process): one thread would leave the
  accelerator waiting most of the time. The children are forked, so ``make_batch`` may be a
  closure (nothing is pickled but step numbers and the finished arrays), and they only ever
  run ``make_batch``: numpy code, never JAX, which is what keeps forking a JAX process safe.
  Workers need Linux (``fork`` with threads is unsafe on macOS); elsewhere the thread is used.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import queue
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

#: A batch takes well under a second; this long without one means a stuck worker (one that called JAX,
#: which deadlocks in a forked child: the module docstring says why the workers run numpy only).
WORKER_TIMEOUT_S = 600
_worker_make_batch: Callable[[int], Any] | None = None  # set in each forked child by _init_worker


def _init_worker(make_batch: Callable[[int], Any]) -> None:
    global _worker_make_batch
    _worker_make_batch = make_batch
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; no traceback per child


def _worker_batch(step: int) -> Any:
    assert _worker_make_batch is not None
    return _worker_make_batch(step)


def can_fork() -> bool:
    """Linux only: macOS lists ``fork`` too, but its system libraries are not safe to fork with threads."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def default_workers() -> int:
    """Worker processes for batches when not told: none on a CPU backend, else up to 8 spare cores."""
    import jax

    if jax.default_backend() == "cpu" or not can_fork():
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class Prefetcher:
    """Iterate ``make_batch(step)`` for ``step`` in ``[start, stop)``, computed ``depth`` batches ahead.

    With ``workers > 0`` (and ``fork`` available) the batches come from that many processes and
    ``max(depth, 2 * workers)`` are in flight. An exception in the producer is re-raised in the
    consumer at the batch it concerns. ``close()`` (or leaving the ``with`` block) stops the
    producer without waiting for the run's end.
    """

    _DONE = object()

    def __init__(self, make_batch: Callable[[int], Any], start: int, stop: int, depth: int = 3, workers: int = 0):
        self.workers = workers if workers > 0 and can_fork() else 0
        self._pool: ProcessPoolExecutor | None = None
        self._stuck = False
        self._thread: threading.Thread | None = None
        if self.workers:
            self._steps = iter(range(start, stop))
            self._pending: collections.deque[tuple[int, Future]] = collections.deque()
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_init_worker, initargs=(make_batch,))
            self._depth = max(depth, 2 * self.workers)
            with warnings.catch_warnings():  # JAX warns at every fork; the children never call JAX (above)
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                self._fill()  # the first submission forks every worker, before the loop starts its own threads
            return
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make_batch, start, stop), daemon=True, name="prefetch")
        self._thread.start()

    def _fill(self) -> None:
        assert self._pool is not None
        while len(self._pending) < self._depth:
            step = next(self._steps, None)
            if step is None:
                return
            self._pending.append((step, self._pool.submit(_worker_batch, step)))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make_batch: Callable[[int], Any], start: int, stop: int) -> None:
        for step in range(start, stop):
            try:
                item: object = (step, make_batch(step))
            except BaseException as exc:  # handed to the consumer, raised there
                self._put(exc)
                return
            if not self._put(item):
                return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if self._pool is not None:
            while self._pending:
                step, future = self._pending.popleft()
                try:  # a worker's exception (or its death: BrokenProcessPool) is raised here
                    batch = future.result(timeout=WORKER_TIMEOUT_S)
                except TimeoutError:
                    self._stuck = True
                    raise RuntimeError(f"no training batch from the worker processes for {WORKER_TIMEOUT_S} s "
                                       f"(step {step}): a make_batch that calls JAX deadlocks in a forked worker; "
                                       "--data-workers 0 draws batches in a thread instead") from None
                self._fill()
                yield step, batch
            return
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def close(self) -> None:
        if self._pool is not None:
            for _, future in self._pending:
                future.cancel()
            self._pending.clear()
            if self._stuck:  # a worker that never answers would block the shutdown below
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.kill()
            # wait=True: the running batches finish (well under a second); returning earlier leaves
            # the executor's exit handler writing to closed pipes at interpreter exit (a traceback).
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
