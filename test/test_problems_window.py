"""The status helpers of the nodes, on an injected clock: windowed counts and rates, the
problem log (each distinct problem logged, rate-limited with the repeats counted, the level
back to OK after the window), the stamp order and the latest-frame worker, and the edge
liveness."""

from __future__ import annotations

import threading

import pytest

from neulens_ros.errors import ConfigError
from neulens_ros.nodes.latest import ArrivalCheck, LatestWorker, StampOrder, staleness
from neulens_ros.nodes.liveness import LOST, OK, UNREACHABLE, WAITING, EdgeLiveness
from neulens_ros.nodes.problems import ProblemLog, normalise
from neulens_ros.nodes.window import EventWindow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, text: str) -> None:
        self.lines.append(('warning', text))

    def debug(self, text: str) -> None:
        self.lines.append(('debug', text))

    def warnings(self) -> list[str]:
        return [text for level, text in self.lines if level == 'warning']


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_window_counts_rates_and_means_forget_the_past(clock: Clock) -> None:
    window = EventWindow(10.0, clock)
    clock.now += 20.0  # running longer than the window: rates over the whole window
    for _ in range(5):
        window.add('frames')
    window.add('rtt', 4.0)
    window.add('rtt', 6.0)
    assert window.count('frames') == 5 and window.rate('frames') == pytest.approx(0.5)
    assert window.mean('rtt') == pytest.approx(5.0) and window.totals()['rtt'] == 10.0
    clock.now += 10.0
    assert window.count('frames') == 0 and window.rate('frames') == 0.0
    assert window.mean('rtt') is None and window.totals() == {}


def test_window_rate_right_after_start_is_over_the_time_so_far(clock: Clock) -> None:
    window = EventWindow(10.0, clock)
    clock.now += 2.0
    window.add('frames', 4)
    assert window.rate('frames') == pytest.approx(2.0)


@pytest.mark.parametrize('window_s', [0.0, -1.0])
def test_window_must_be_positive(window_s: float) -> None:
    with pytest.raises(ConfigError, match='window must be > 0'):
        EventWindow(window_s)


def test_log_every_s_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match='log_every_s'):
        ProblemLog(Logger(), log_every_s=-1.0)


def test_each_distinct_problem_is_logged_even_of_one_kind(clock: Clock) -> None:
    logger = Logger()
    problems = ProblemLog(logger, window_s=10.0, log_every_s=10.0, clock=clock)
    problems.report('EncodingError', "unsupported encoding 'yuv422'")
    problems.report('EncodingError', 'empty encoding')
    problems.report('EncodingError', 'data has 10 bytes, expected 921600')
    problems.report('EncodingError', 'step 3 is smaller than a row (1920 bytes)')
    warnings = logger.warnings()
    assert len(warnings) == 4
    assert all(w.startswith('EncodingError: ') for w in warnings)
    assert problems.counts['EncodingError'] == 4


def test_repeats_are_rate_limited_and_counted(clock: Clock) -> None:
    logger = Logger()
    problems = ProblemLog(logger, window_s=10.0, log_every_s=5.0, clock=clock)
    problems.report('stale', 'frame is 1200 ms old')
    for age in range(1300, 1310):  # numbers differ: still the same problem
        clock.now += 0.1
        problems.report('stale', f'frame is {age} ms old')
    assert len(logger.warnings()) == 1
    clock.now += 5.0
    problems.report('stale', 'frame is 2000 ms old')
    assert len(logger.warnings()) == 2
    assert '10 more like it' in logger.warnings()[1] and '[total 12]' in logger.warnings()[1]
    assert problems.counts['stale'] == 12


def test_flush_says_the_repeats_when_the_problem_stops(clock: Clock) -> None:
    logger = Logger()
    problems = ProblemLog(logger, window_s=10.0, log_every_s=5.0, clock=clock)
    for _ in range(3):
        problems.report('DataError', 'empty TileBatch')
    problems.flush()
    assert len(logger.warnings()) == 1  # not due yet
    clock.now += 5.0
    problems.status_values()  # flushes
    assert len(logger.warnings()) == 2 and '2 more like it' in logger.warnings()[1]
    clock.now += 5.0
    problems.flush()
    assert len(logger.warnings()) == 2  # nothing new to say


def test_level_returns_to_ok_after_the_window(clock: Clock) -> None:
    problems = ProblemLog(Logger(), window_s=10.0, clock=clock)
    assert problems.level() == 'ok'
    problems.report('EncodingError', 'empty encoding')
    assert problems.level() == 'warn'
    values = problems.status_values()
    assert values['recent_EncodingError'] == 1 and values['total_EncodingError'] == 1
    clock.now += 9.0
    assert problems.level() == 'warn'
    clock.now += 1.5
    assert problems.level() == 'ok'
    values = problems.status_values()
    assert 'recent_EncodingError' not in values and values['total_EncodingError'] == 1
    assert values['problems_per_s'] == 0.0


def test_tallies_count_but_do_not_warn(clock: Clock) -> None:
    logger = Logger()
    problems = ProblemLog(logger, window_s=10.0, clock=clock)
    problems.counts['skipped_few_points'] += 3  # the `counts[kind] += n` of other nodes
    problems.tally('superseded', 2)
    assert problems.level() == 'ok' and logger.lines == []
    values = problems.status_values()
    assert values['recent_skipped_few_points'] == 3 and values['total_superseded'] == 2
    clock.now += 11.0
    assert problems.status_values()['total_skipped_few_points'] == 3
    assert 'recent_skipped_few_points' not in problems.status_values()


def test_normalise_masks_numbers() -> None:
    assert normalise('frame is 12.5 ms old, -3 tiles, 1e-3') == 'frame is # ms old, # tiles, #'


@pytest.mark.parametrize('stamps, verdicts', [
    ([1, 2, 2, 3], ['', '', '', '']),
    ([5, 4, 6], ['', 'backwards', '']),
    ([5_000_000_000, 1_000_000_000, 1_500_000_000], ['', 'restart', '']),
])
def test_stamp_order(stamps: list[int], verdicts: list[str]) -> None:
    order = StampOrder()
    assert [order.check(s)[0] for s in stamps] == verdicts


@pytest.mark.parametrize('age_ms, limit_ms, stale', [
    (999.0, 1000.0, False), (1000.0, 1000.0, False), (1001.0, 1000.0, True),
    (60000.0, 0.0, False)])
def test_staleness(age_ms: float, limit_ms: float, stale: bool) -> None:
    detail = staleness(int(5e9 + age_ms * 1e6), int(5e9), limit_ms)
    assert bool(detail) == stale
    assert not stale or detail == f'frame is {age_ms:.0f} ms old (stale_after_ms=1000)'


def test_stamp_order_needs_a_positive_jump() -> None:
    with pytest.raises(ConfigError, match='restart_jump_ns'):
        StampOrder(0)


def test_arrival_check_reports_empty_frame_id_and_drops_backwards_stamps(clock: Clock
                                                                          ) -> None:
    logger = Logger()
    problems = ProblemLog(logger, clock=clock)
    check = ArrivalCheck(problems, 'image')
    assert check.accept(1_000_000, '')  # reported, still processed
    assert check.accept(2_000_000, 'cam')
    assert not check.accept(1_500_000, 'cam')
    assert problems.counts == {'empty_frame_id': 1, 'stamp_backwards': 1}
    assert any('empty header.frame_id' in w for w in logger.warnings())
    assert any('0.5 ms before the previous one: dropped' in w for w in logger.warnings())


def test_latest_worker_processes_the_newest_and_reports_the_superseded() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[int] = []
    superseded: list[int] = []

    def process(item: int) -> None:
        started.set()
        release.wait(5.0)
        done.append(item)

    worker = LatestWorker('test', process, superseded.append, lambda i, e: None)
    worker.offer(1)
    assert started.wait(5.0)  # 1 in progress: 2, 3 and 4 arrive meanwhile
    for item in (2, 3, 4):
        worker.offer(item)
    release.set()
    for _ in range(100):
        if done == [1, 4]:
            break
        threading.Event().wait(0.02)
    assert worker.stop()
    assert done == [1, 4] and superseded == [2, 3]


def test_latest_worker_reports_a_failure_and_carries_on() -> None:
    failures: list[tuple[int, str]] = []
    done: list[int] = []
    finished = threading.Event()

    def process(item: int) -> None:
        if item == 1:
            raise RuntimeError('boom')
        done.append(item)
        finished.set()

    worker = LatestWorker('test', process, lambda i: None,
                          lambda i, e: failures.append((i, str(e))))
    worker.offer(1)
    for _ in range(100):
        if failures:
            break
        threading.Event().wait(0.02)
    worker.offer(2)
    assert finished.wait(5.0)
    assert worker.stop()
    assert failures == [(1, 'boom')] and done == [2]


def test_latest_worker_holds_items_until_may_start_and_reports_the_held() -> None:
    room = threading.Event()
    done: list[int] = []
    held: list[int] = []
    superseded: list[int] = []
    finished = threading.Event()

    def process(item: int) -> None:
        done.append(item)
        finished.set()

    worker = LatestWorker('test', process, superseded.append, lambda i, e: None,
                          may_start=room.is_set, held=held.append, recheck_s=0.01)
    for item in (1, 2, 3):  # no room: each waits, the next replaces it
        worker.offer(item)
        threading.Event().wait(0.05)
    assert done == [] and held == [1, 2] and superseded == []
    room.set()
    worker.wake()
    assert finished.wait(5.0)
    assert worker.stop()
    assert done == [3]  # the newest, once there was room


@pytest.mark.parametrize('recheck_s', [0.0, -0.1])
def test_latest_worker_needs_a_positive_recheck(recheck_s: float) -> None:
    with pytest.raises(ConfigError, match='recheck_s'):
        LatestWorker('test', print, print, print, recheck_s=recheck_s)


def test_edge_liveness_goes_silent_probes_and_recovers(clock: Clock) -> None:
    edge = EdgeLiveness(timeout_s=0.3, probe_period_s=0.5, clock=clock)
    assert edge.state == WAITING and edge.may_send()
    edge.sent()
    clock.now += 0.05
    assert edge.replied(0.05) is None and edge.state == OK
    edge.sent()  # never answered: the edge died
    clock.now += 0.34
    assert not edge.check()  # within 0.05 s expected + 0.3 s
    clock.now += 0.02
    assert edge.check() and edge.state == LOST
    assert not edge.check()  # said once
    assert not edge.may_send()  # the last send was 0.36 s ago
    clock.now += 0.2
    assert edge.may_send()
    edge.sent()
    assert not edge.may_send()
    clock.now += 1.0
    assert edge.replied(0.05) == pytest.approx(1.56) and edge.state == OK
    assert edge.may_send()


def test_edge_never_heard_is_unreachable_not_lost(clock: Clock) -> None:
    edge = EdgeLiveness(timeout_s=0.3, probe_period_s=0.5, clock=clock)
    edge.sent()
    clock.now += 0.4
    assert edge.check() and edge.state == UNREACHABLE
    assert edge.replied() == 0.0 and edge.state == OK


@pytest.mark.parametrize('timeout_s, probe_s, match', [
    (0.0, 0.5, 'edge_timeout_ms'), (0.3, 0.0, 'edge_probe_period_s')])
def test_edge_liveness_validation(timeout_s: float, probe_s: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        EdgeLiveness(timeout_s=timeout_s, probe_period_s=probe_s)
