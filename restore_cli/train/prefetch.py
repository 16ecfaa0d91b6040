"""Compute batches ahead in a background thread, in step order, with errors re-raised in order.

The consumer (the training loop) gets ``(step, batch)`` pairs; a producer exception is
delivered at the position of the batch it concerns, so a bad image stops training at the
step that needed it, after every earlier step (and checkpoint) has happened.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any


class Prefetcher:
    """Iterate ``make_batch(step)`` for ``step`` in ``[start, stop)``, computed ``depth`` batches ahead.

    An exception in the producer is re-raised in the consumer at the batch it concerns.
    ``close()`` (or leaving the ``with`` block) stops the thread without waiting for the run's end.
    """

    _DONE = object()

    def __init__(self, make_batch: Callable[[int], Any], start: int, stop: int, depth: int = 3):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make_batch, start, stop), daemon=True, name="prefetch")
        self._thread.start()

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
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
