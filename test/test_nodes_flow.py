"""Flow control of the gate (nodes/flow.py) on an injected clock: frames in flight until the
last stage heard from answers them, drops and lost frames, the limit, the timeout, and the
validation."""

from __future__ import annotations

import pytest

from neulens_ros.errors import ConfigError
from neulens_ros.nodes.flow import FrameFlow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_no_limit_before_any_stage_replied(clock: Clock) -> None:
    flow = FrameFlow(2, 0.3, clock=clock)
    for stamp in range(5):
        flow.sent(stamp)
    assert not flow.full() and flow.in_flight() == 0 and flow.last_stage() is None


@pytest.mark.parametrize('limit, sent, full', [(1, 1, True), (2, 1, False), (2, 2, True),
                                               (2, 3, True), (0, 5, False)])
def test_full_at_the_limit(clock: Clock, limit: int, sent: int, full: bool) -> None:
    flow = FrameFlow(limit, 0.3, clock=clock)
    flow.sent(0)
    flow.replied('supernet', 0, dropped=False)  # the edge answers: the pace is known
    for stamp in range(1, sent + 1):
        flow.sent(stamp)
    assert flow.full() == full


def test_lifting_ends_the_flight_once_heard_and_the_edge_before(clock: Clock) -> None:
    flow = FrameFlow(2, 0.3, clock=clock)
    for stamp in (1, 2):
        flow.sent(stamp)
    flow.replied('supernet', 1, dropped=False)
    assert flow.last_stage() == 'supernet' and flow.in_flight() == 1
    flow.replied('lifting', 1, dropped=False)
    assert flow.last_stage() == 'lifting'
    flow.sent(3)
    flow.replied('supernet', 2, dropped=False)  # a result: still on its way to lifting
    assert flow.in_flight() == 2 and flow.full()
    flow.replied('supernet', 3, dropped=True)  # dropped by the edge: never reaches lifting
    assert flow.in_flight() == 1 and not flow.full()
    flow.replied('lifting', 2, dropped=True)  # superseded at lifting: answered all the same
    assert flow.in_flight() == 0


def test_a_later_answer_ends_the_flight_of_lost_frames(clock: Clock) -> None:
    flow = FrameFlow(3, 0.3, clock=clock)
    for stamp in (1, 2, 3):
        flow.sent(stamp)
    flow.replied('supernet', 2, dropped=False)  # 1 was lost on the way
    assert flow.in_flight() == 1 and list(flow.sent_at) == [3]


def test_frames_waiting_beyond_the_reply_time_and_timeout_leave(clock: Clock) -> None:
    flow = FrameFlow(2, 0.3, clock=clock)
    flow.sent(1)
    clock.now += 0.1
    flow.replied('supernet', 1, dropped=False)  # a reply time of 0.1 s
    assert flow.limit_s('supernet') == pytest.approx(0.4)
    flow.sent(2)
    flow.sent(3)
    clock.now += 0.35
    flow.replied('supernet', 1, dropped=False)  # a late duplicate keeps the edge heard
    assert flow.full()
    clock.now += 0.06  # 0.41 s after sending: longer than 0.1 + 0.3 s
    flow.replied('supernet', 1, dropped=False)
    assert flow.in_flight() == 0


def test_a_silent_last_stage_stops_holding(clock: Clock) -> None:
    flow = FrameFlow(1, 0.3, clock=clock)
    flow.sent(1)
    flow.replied('lifting', 1, dropped=False)
    flow.sent(2)
    assert flow.full()
    clock.now += 0.5  # lifting stopped answering; no stage heard within its limit
    assert flow.last_stage() is None and not flow.full()


def test_replies_of_other_stages_are_ignored(clock: Clock) -> None:
    flow = FrameFlow(1, 0.3, clock=clock)
    flow.sent(1)
    flow.replied('gate', 1, dropped=True)
    assert flow.last_stage() is None and list(flow.sent_at) == [1]


@pytest.mark.parametrize('limit, timeout_s, stages, match', [
    (-1, 0.3, ('supernet',), 'max_frames_in_flight'), (2, 0.0, ('supernet',), 'timeout'),
    (2, 0.3, (), 'stages'), (2, 0.3, ('supernet', 'supernet'), 'stages')])
def test_flow_validation(limit: int, timeout_s: float, stages: tuple[str, ...],
                         match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FrameFlow(limit, timeout_s, stages)


def test_after_a_restarted_stream_an_answer_ends_the_frames_sent_before_it(
        clock: Clock) -> None:
    flow = FrameFlow(3, 0.3, clock=clock)
    flow.sent(5_000)
    flow.replied('supernet', 5_000, dropped=False)
    flow.sent(9_000)  # lost on the way; then the stream restarts with lower stamps
    flow.sent(10)
    flow.sent(20)
    flow.replied('supernet', 10, dropped=False)
    assert list(flow.sent_at) == [20]
    flow.sent(30)
    flow.replied('supernet', 25, dropped=False)  # a frame not in flight: stamps up to it
    assert list(flow.sent_at) == [30]
