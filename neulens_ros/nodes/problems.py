"""Bad input is counted and logged per distinct problem, rate-limited: never a crash, never
log spam, and never a problem hidden because another one of its class came first.

`report(kind, detail)` counts the kind and logs one warning per distinct problem (the kind and
its detail with the numbers masked) at most every `log_every_s` seconds; the repeats in
between are counted and the next line (or `status_values`, once the interval has passed)
says how many there were. `counts` holds the totals since start; other tallies may be added
with `counts[kind] += n` (dropped frames that are normal under load, skipped boxes). Both go
into the recent window, and `level()` is 'warn' only while a reported problem occurred in the
window, so a node returns to OK when its problems stop.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from neulens_ros.errors import ConfigError
from neulens_ros.nodes.window import Clock, EventWindow, WindowedCounts

NUMBER = re.compile(r'[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?')
MAX_DISTINCT = 256  # distinct problems whose last log line is remembered (oldest forgotten)
REPORTED = '_reported'  # name of the reported problems in the window (not a kind)


def normalise(detail: str) -> str:
    """The detail with every number masked: one problem whatever its values."""
    return NUMBER.sub('#', detail.strip())


@dataclass
class _LogState:
    logged_at: float  # clock time of the last line, s
    suppressed: int = 0  # repeats since that line
    detail: str = ''  # the latest repeat's detail


class ProblemLog:
    """Problems of one node: totals, a recent window and rate-limited log lines."""

    def __init__(self, logger: Any, window_s: float = 10.0, log_every_s: float = 10.0,
                 clock: Clock = time.monotonic) -> None:
        if log_every_s < 0:
            raise ConfigError(f'log_every_s must be >= 0, got {log_every_s}')
        self.logger = logger
        self.log_every_s = log_every_s
        self.clock = clock
        self.counts = WindowedCounts(EventWindow(window_s, clock))
        self.reported = EventWindow(window_s, clock)
        self._lines: OrderedDict[tuple[str, str], _LogState] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def window_s(self) -> float:
        return self.reported.window_s

    def report(self, kind: str, detail: str) -> None:
        """Count one problem of `kind` and log it unless the same problem was logged less
        than `log_every_s` ago."""
        self.tally(kind)
        self.reported.add(REPORTED)
        key = (kind, normalise(detail))
        now = self.clock()
        with self._lock:
            state = self._lines.get(key)
            if state is not None and now - state.logged_at < self.log_every_s:
                state.suppressed += 1
                state.detail = detail
                self.logger.debug(f'{kind}: {detail}')
                return
            self._lines[key] = _LogState(logged_at=now)
            self._lines.move_to_end(key)
            while len(self._lines) > MAX_DISTINCT:
                self._lines.popitem(last=False)
        more = (f' ({state.suppressed} more like it in the last {now - state.logged_at:.0f} s)'
                if state is not None and state.suppressed else '')
        self.logger.warning(f'{kind}: {detail}{more} [total {self.counts[kind]}]')

    def tally(self, kind: str, count: int = 1) -> None:
        """Count `count` events of `kind` without a log line or a warning (a frame dropped as
        designed, e.g. superseded); safe from several threads, unlike `counts[kind] += n`."""
        with self._lock:
            self.counts[kind] += count

    def flush(self) -> None:
        """Log the repeats of every problem logged at least `log_every_s` ago that have not
        been said yet (so a count is never lost when a problem stops)."""
        now = self.clock()
        due = []
        with self._lock:
            for (kind, _), state in self._lines.items():
                if state.suppressed and now - state.logged_at >= self.log_every_s:
                    due.append((kind, state.detail, state.suppressed, now - state.logged_at))
                    state.suppressed = 0
                    state.logged_at = now
        for kind, detail, suppressed, seconds in due:
            self.logger.warning(f'{kind}: {suppressed} more like it in the last {seconds:.0f} s,'
                                f' the latest: {detail} [total {self.counts[kind]}]')

    def recent(self) -> dict[str, int]:
        """Counts of the window by kind (reported problems and added tallies)."""
        return self.counts.recent()

    def level(self) -> str:
        """'warn' while a problem was reported within the window, else 'ok'."""
        return 'warn' if self.reported.count(REPORTED) else 'ok'

    def status_values(self) -> dict[str, Any]:
        """Status keys: problems_per_s (the window's reported problems per second),
        recent_<kind> (the window's count) and total_<kind> (since start). Also logs the
        repeats that are due (flush)."""
        self.flush()
        values: dict[str, Any] = {'window_s': self.window_s,
                                  'problems_per_s': round(self.reported.rate(REPORTED), 3)}
        values.update({f'recent_{k}': v for k, v in sorted(self.recent().items())})
        values.update({f'total_{k}': v for k, v in sorted(self.counts.items())})
        return values
