"""The progress bar on stderr, and the worker pool whose calls it counts."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Progress:
    """A one-line progress bar on ``stream``, shown only once a run has lasted ``delay`` seconds.

    Thread-safe; redrawn at most every ``interval`` seconds. Disabled, it does nothing.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        delay: float = 1.0,
        interval: float = 0.1,
        width: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._delay = delay
        self._interval = interval
        self._width = width
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._label = ""
        self._total: int | None = None
        self._count = 0
        self._drawn_at: float | None = None
        self._shown = 0

    @classmethod
    def disabled(cls) -> Progress:
        return cls(enabled=False)

    def phase(self, label: str, total: int | None = None) -> None:
        with self._lock:
            self._label, self._total, self._count = label, total, 0
            self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self._count += count
            self._draw(force=False)

    def close(self) -> None:
        with self._lock:
            if self._shown:
                self._stream.write("\r" + " " * self._shown + "\r")
                self._stream.flush()
                self._shown = 0

    def render(self) -> str:
        if self._total is None:
            return f"{self._label}: {self._count}"
        done = min(self._count, self._total)
        filled = self._width * done // self._total if self._total else self._width
        bar = "#" * filled + "-" * (self._width - filled)
        return f"{self._label} [{bar}] {done}/{self._total}"

    def _draw(self, *, force: bool) -> None:
        if not self._enabled:
            return
        now = self._clock()
        if now - self._started < self._delay:
            return
        if not force and self._drawn_at is not None and now - self._drawn_at < self._interval:
            return
        text = self.render()
        self._stream.write("\r" + text.ljust(self._shown))
        self._stream.flush()
        self._shown = max(self._shown, len(text))
        self._drawn_at = now


def run_concurrently(
    function: Callable[[T], R], items: Sequence[T], workers: int, progress: Progress
) -> list[R]:
    """``function`` over ``items`` on ``workers`` threads, results in order; the first error stops it."""
    if not items:
        return []

    def tracked(item: T) -> R:
        result = function(item)
        progress.advance()
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(tracked, item) for item in items]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:  # after an error, start nothing more (a no-op for finished ones)
                future.cancel()
