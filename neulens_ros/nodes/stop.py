"""Stop signals of a node process: SIGINT and SIGTERM ask the node to stop, and nothing is
raised where the signal lands.

rclpy's own handlers shut the context down at once, under a callback that is still
publishing, and a second Ctrl-C (or launch's SIGINT after the terminal's) raised
KeyboardInterrupt inside the cleanup; Python's default SIGINT handler did the same while the
node's modules (torch, ONNX Runtime: seconds) were still importing. A StopRequest, installed
by the node's entry point before those imports, only records the first signal; the runner
(nodes/common.py) does not build the node when a signal came while it started, and otherwise
returns from its spin loop after the callback in progress. From the first signal on, the stop
signals are ignored, through the cleanup and the interpreter's exit (which would restore the
default action).

This module imports nothing heavy: it must load in milliseconds.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Records the first stop signal in `signal` (None until then)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        for sig in STOP_SIGNALS:
            signal.signal(sig, self.request)

    def request(self, signum: int, _frame: object) -> None:
        self.signal = signum
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    @property
    def name(self) -> str:
        """The signal's name ('' before any)."""
        return signal.Signals(self.signal).name if self.signal is not None else ''
