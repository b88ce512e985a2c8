"""The emulated link's scheduler with a fake clock: rate, delay, loss, queue, order."""

import numpy as np
import pytest

from neulens_ros.errors import ConfigError
from neulens_ros.link.scheduler import PRESETS, DirectionScheduler, LinkConfig

FRAME = bytes(1500)


def run(sched: DirectionScheduler, frames: int, interval_s: float, until_s: float
        ) -> list[tuple[float, bytes]]:
    """Offer `frames` frames every interval; collect (time, frame) in 0.1 ms steps."""
    out, t, sent = [], 0.0, 0
    step = 1e-4
    while t <= until_s:
        if sent < frames and t >= sent * interval_s:
            sched.offer(bytes([sent % 256]) + FRAME[1:], t)
            sent += 1
        out += [(t, f) for f in sched.due(t)]
        t += step
    return out


def test_throughput_equals_the_rate() -> None:
    sched = DirectionScheduler(LinkConfig(rate_mbps=10.0, delay_ms=0.0, queue_bytes=10**7))
    got = run(sched, 400, 0.0, 1.0)  # offered all at once: the link paces them
    duration = got[-1][0] - got[0][0]
    mbps = 8 * 1500 * (len(got) - 1) / duration / 1e6
    assert len(got) == 400 and mbps == pytest.approx(10.0, rel=0.02)


def test_delay_is_applied_and_order_kept_under_jitter() -> None:
    sched = DirectionScheduler(LinkConfig(rate_mbps=100.0, delay_ms=20.0, jitter_ms=15.0))
    got = run(sched, 50, 0.002, 0.3)
    assert len(got) == 50
    firsts = [f[0] for _, f in got]
    assert firsts == [i % 256 for i in range(50)]  # in order
    first_time = got[0][0]
    assert 0.020 <= first_time <= 0.020 + 0.015 + 0.001


def test_loss_fraction_matches() -> None:
    sched = DirectionScheduler(LinkConfig(rate_mbps=1000.0, delay_ms=1.0, loss=0.1), seed=3)
    for i in range(5000):
        sched.offer(FRAME, i * 1e-3)
    lost = sched.stats['lost'] / 5000
    assert abs(lost - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 5000)


def test_queue_limit_bounds_the_backlog() -> None:
    cfg = LinkConfig(rate_mbps=1.0, delay_ms=0.0, queue_bytes=15_000)
    sched = DirectionScheduler(cfg)
    accepted = sum(sched.offer(FRAME, 0.0) for _ in range(100))
    assert accepted == 10 and sched.stats['queue_drops'] == 90
    assert sched.backlog_bytes(0.0) <= cfg.queue_bytes
    assert sched.next_release() == pytest.approx(8 * 1500 / 1e6)


def test_presets_are_ordered() -> None:
    good, avg, poor = PRESETS['good'], PRESETS['average'], PRESETS['poor']
    assert good.rate_mbps > avg.rate_mbps > poor.rate_mbps
    assert good.delay_ms < avg.delay_ms < poor.delay_ms and good.loss <= avg.loss <= poor.loss


@pytest.mark.parametrize('kwargs', [dict(rate_mbps=0.0), dict(delay_ms=-1.0),
                                    dict(loss=1.0), dict(queue_bytes=100)])
def test_invalid_link_config(kwargs: dict) -> None:
    args = dict(rate_mbps=10.0, delay_ms=5.0)
    args.update(kwargs)
    with pytest.raises(ConfigError):
        LinkConfig(**args)
