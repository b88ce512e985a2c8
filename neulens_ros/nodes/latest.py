"""Latest-frame input of a stage: a frame waits in one slot for a worker thread, a newer frame
replaces it (the older one is superseded, and said so), and frames whose stamps go backwards
never reach the stage (they would come out after newer ones).

The subscription callback only checks the stamp and fills the slot, so the middleware's queue
is drained at the camera rate however slow the stage is: no queue forms in front of it, and the
stage always starts on the newest frame it has.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from neulens_ros.errors import ConfigError
from neulens_ros.nodes.problems import ProblemLog

RESTART_JUMP_NS = 2_000_000_000  # a stamp this far back is a restarted stream, not a stray
KEPT = ('empty_frame_id', 'stamp_restart')  # problems of a frame that is still processed


def staleness(now_ns: int, stamp_ns: int, stale_after_ms: float) -> str:
    """'' for a frame young enough (or with stale_after_ms 0: never stale), else why it is
    stale."""
    age_ms = (now_ns - stamp_ns) / 1e6
    if stale_after_ms <= 0 or age_ms <= stale_after_ms:
        return ''
    return f'frame is {age_ms:.0f} ms old (stale_after_ms={stale_after_ms:.0f})'


class StampOrder:
    """Accepts stamps that do not go backwards. A jump back by more than `restart_jump_ns`
    starts a new sequence (a source restarted, a bag looped) instead of stalling the stage
    until the stamps catch up."""

    def __init__(self, restart_jump_ns: int = RESTART_JUMP_NS) -> None:
        if restart_jump_ns <= 0:
            raise ConfigError(f'restart_jump_ns must be > 0, got {restart_jump_ns}')
        self.restart_jump_ns = restart_jump_ns
        self.last_ns: int | None = None

    def check(self, stamp_ns: int) -> tuple[str, int]:
        """('', 0) for a stamp in order (equal counts as in order); ('backwards', ns back)
        for one to drop; ('restart', ns back) for the first of a new sequence (accepted)."""
        last = self.last_ns
        if last is not None and stamp_ns < last:
            if last - stamp_ns <= self.restart_jump_ns:
                return 'backwards', last - stamp_ns
            self.last_ns = stamp_ns
            return 'restart', last - stamp_ns
        self.last_ns = stamp_ns
        return '', 0


class ArrivalCheck:
    """What a stage checks as a frame arrives: a frame id (reported when empty, the frame is
    still processed) and the stamp order (a frame stamped before the previous one is reported
    and dropped). `what` names the input in the problem details."""

    def __init__(self, problems: ProblemLog, what: str,
                 restart_jump_ns: int = RESTART_JUMP_NS) -> None:
        self.problems = problems
        self.what = what
        self.order = StampOrder(restart_jump_ns)

    def accept(self, stamp_ns: int, frame_id: str) -> bool:
        """False for a frame to drop (its problem already reported)."""
        if not frame_id:
            self.problems.report('empty_frame_id', f'{self.what} has an empty header.frame_id '
                                 '(set the frame id at the source: its results cannot be '
                                 'placed in TF)')
        verdict, back_ns = self.order.check(stamp_ns)
        if verdict == 'backwards':
            self.problems.report('stamp_backwards', f'{self.what} stamped {back_ns / 1e6:.1f} ms '
                                 'before the previous one: dropped (it would come out after '
                                 'newer frames)')
            return False
        if verdict == 'restart':
            self.problems.report('stamp_restart', f'{self.what} stamped {back_ns / 1e9:.1f} s '
                                 'before the previous one: taken as the start of a new stream')
        return True


class LatestWorker:
    """Runs `process(item)` in its own thread on the newest item offered; an item still
    waiting when a newer one is offered goes to `superseded(item)` instead (called in the
    offering thread). An unexpected exception of `process` goes to `failed(item, exc)` and
    the worker carries on with the next item (a thread that died would stop the stage
    without a word).

    With `may_start`, the worker starts an item only when it returns True (flow control:
    the stages after this one have room); meanwhile the item waits in the slot, newer items
    replace it and the replaced one goes to `held(item)` (default: `superseded`). Call
    `wake()` when `may_start` may have become True; it is also asked again every
    `recheck_s` seconds while an item waits."""

    def __init__(self, name: str, process: Callable[[Any], None],
                 superseded: Callable[[Any], None],
                 failed: Callable[[Any, Exception], None],
                 may_start: Callable[[], bool] | None = None,
                 held: Callable[[Any], None] | None = None, recheck_s: float = 0.02) -> None:
        if recheck_s <= 0:
            raise ConfigError(f'recheck_s must be > 0, got {recheck_s}')
        self.process = process
        self.superseded = superseded
        self.failed = failed
        self.may_start = may_start
        self.held = held or superseded
        self.recheck_s = recheck_s
        self._slot: Any = None
        self._holding = False  # the item in the slot was found and not started (may_start)
        self._stopping = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, item: Any) -> None:
        with self._ready:
            older, self._slot = self._slot, item
            holding = self._holding
            self._ready.notify()
        if older is not None:
            (self.held if holding else self.superseded)(older)

    def wake(self) -> None:
        """Ask `may_start` again now (the stages after this one may have room)."""
        with self._ready:
            self._ready.notify()

    def _take(self) -> Any:
        """The next item to process, or None when stopping (waits until there is one that
        may start)."""
        with self._ready:
            while not self._stopping:
                if self._slot is not None:
                    if self.may_start is None or self.may_start():
                        item, self._slot, self._holding = self._slot, None, False
                        return item
                    self._holding = True
                self._ready.wait(self.recheck_s if self._slot is not None else None)
            return None

    def _run(self) -> None:
        while (item := self._take()) is not None:
            try:
                self.process(item)
            except Exception as exc:  # noqa: BLE001 - reported by `failed`, see the class
                self.failed(item, exc)

    def stop(self, timeout_s: float = 3.0) -> bool:
        """Stop after the item in progress; True when the thread ended within `timeout_s`."""
        with self._ready:
            self._stopping = True
            self._slot = None
            self._ready.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()
