"""Counts over the recent past: what a node's status says about now, not about the whole run.

ROS-free; the clock is injectable (monotonic seconds) so tests step time by hand.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Callable

from neulens_ros.errors import ConfigError

Clock = Callable[[], float]  # monotonic seconds


class EventWindow:
    """Named events with a value each (1 for a plain count), kept for the last `window_s`
    seconds; thread-safe (a node's executor and its worker thread both add)."""

    def __init__(self, window_s: float = 10.0, clock: Clock = time.monotonic) -> None:
        if window_s <= 0:
            raise ConfigError(f'the status window must be > 0 s, got {window_s}')
        self.window_s = window_s
        self.clock = clock
        self.started = clock()
        self._events: deque[tuple[float, str, float]] = deque()  # (time s, name, value)
        self._lock = threading.Lock()

    def add(self, name: str, value: float = 1.0) -> None:
        with self._lock:
            now = self.clock()
            self._events.append((now, name, float(value)))
            self._prune(now)

    def _prune(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window_s:
            self._events.popleft()

    def _recent(self, name: str) -> list[float]:
        with self._lock:
            self._prune(self.clock())
            return [value for _, n, value in self._events if n == name]

    def count(self, name: str) -> int:
        """Events of `name` in the window."""
        return len(self._recent(name))

    def total(self, name: str) -> float:
        """Sum of the values of `name` in the window."""
        return sum(self._recent(name))

    def mean(self, name: str) -> float | None:
        """Mean value of `name` in the window; None when there is none."""
        values = self._recent(name)
        return sum(values) / len(values) if values else None

    def rate(self, name: str) -> float:
        """Sum of the values of `name` per second over the window (over the time since the
        start while that is shorter)."""
        span = min(self.window_s, max(self.clock() - self.started, 1e-3))
        return self.total(name) / span

    def totals(self) -> dict[str, float]:
        """Sum of the values of every name with events in the window."""
        with self._lock:
            self._prune(self.clock())
            sums: Counter[str] = Counter()
            for _, name, value in self._events:
                sums[name] += value
            return dict(sums)


class WindowedCounts(Counter):
    """Cumulative counts (a Counter: `counts[kind] += n` works) whose increments also go to
    an EventWindow, so the same tally answers both 'since start' and 'recently'."""

    def __init__(self, window: EventWindow) -> None:
        super().__init__()
        self.window = window

    def __setitem__(self, key: str, value: int) -> None:
        added = value - self.get(key, 0)
        super().__setitem__(key, value)
        if added > 0:
            self.window.add(key, added)

    def recent(self) -> dict[str, int]:
        """The increments of the window, by kind."""
        return {k: int(v) for k, v in self.window.totals().items() if k in self}
