"""progress_bar: a live bar on a terminal, a bar updated every LOG_INTERVAL_S in a log."""

from __future__ import annotations

import io
import sys

import pytest

from neulens_ros.progress import LOG_INTERVAL_S, progress_bar


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize('tty, interval', [(True, 0.1), (False, LOG_INTERVAL_S)])
def test_updates_only_every_log_interval_when_not_a_terminal(
        monkeypatch: pytest.MonkeyPatch, tty: bool, interval: float) -> None:
    stream = Stream(tty)
    monkeypatch.setattr(sys, 'stderr', stream)
    bar = progress_bar(range(3), desc='x', file=stream)
    assert bar.mininterval == interval
    assert bar.maxinterval == (10.0 if tty else LOG_INTERVAL_S)  # tqdm's default on a terminal
    assert list(bar) == [0, 1, 2]  # the items pass through unchanged
    assert '3/3' in stream.getvalue()  # the final state is always written


def test_an_explicit_interval_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = Stream(False)
    monkeypatch.setattr(sys, 'stderr', stream)
    assert progress_bar(total=5, mininterval=2.0, file=stream).mininterval == 2.0
