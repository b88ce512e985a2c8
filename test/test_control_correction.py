"""DEMUX's online correction (EWMA mean, faster reaction to a slowdown, quantile of recent
errors) and the feasibility of a frame at its measured speed."""

import numpy as np
import pytest

from neulens_ros.control.correction import OnlineCorrection
from neulens_ros.control.feasibility import feasible, nearest_fill, slowdown
from neulens_ros.errors import ConfigError

PAPER = dict(alpha=0.2, alpha_up=0.0, quantile=0.0)


def feed(c: OnlineCorrection, samples) -> list[float]:
    """The planning ratio before each sample, then the sample (measured / predicted)."""
    planned = []
    for s in samples:
        planned.append(c.ratio('layer2', 3))
        c.update('layer2', 3, 10.0, 10.0 * s)
    return planned


def test_paper_correction_is_the_ewma_mean() -> None:
    c = OnlineCorrection(**PAPER)
    feed(c, [2.0] * 40)
    assert c.ratio('stem', 2) == pytest.approx(2.0, rel=0.01)
    one = OnlineCorrection(**PAPER)
    one.update('layer2', 3, 10.0, 20.0)
    assert one.ratio('layer2', 3) == pytest.approx(0.8 * 1.0 + 0.2 * 2.0)


def test_alpha_up_reacts_faster_to_a_slowdown_than_to_a_speedup() -> None:
    plain, fast = OnlineCorrection(**PAPER), OnlineCorrection(alpha=0.2, alpha_up=0.6,
                                                             quantile=0.0)
    feed(plain, [2.0] * 3)
    feed(fast, [2.0] * 3)
    assert fast.ratio('x', 2) == pytest.approx(2.0 - 0.4 ** 3)  # 1 - (1 - 0.6)^3 of the step
    assert plain.ratio('x', 2) == pytest.approx(2.0 - 0.8 ** 3)
    before = fast.ratio('x', 2)
    feed(fast, [1.0])  # a speed-up moves it only by alpha
    assert fast.ratio('x', 2) == pytest.approx(before - 0.2 * (before - 1.0))


@pytest.mark.parametrize('q', [0.8, 0.9])
def test_quantile_covers_about_q_of_a_jittery_slowdown(q: float) -> None:
    rng = np.random.default_rng(0)
    samples = rng.uniform(1.0, 2.0, 3000)
    mean_only = OnlineCorrection(**PAPER)
    covered = OnlineCorrection(alpha=0.2, quantile=q, window=40)
    hit_mean = np.mean(np.array(feed(mean_only, samples))[100:] >= samples[100:])
    hit_q = np.mean(np.array(feed(covered, samples))[100:] >= samples[100:])
    assert hit_mean < 0.65  # the mean covers about half the frames
    assert q - 0.06 < hit_q < q + 0.06


def test_quantile_widens_after_a_switching_load() -> None:
    """A load switching between 1x and 2x every 8 frames: the EWMA lags each switch, the
    misses widen the quantile, so the ratio covers more of the slow frames."""
    samples = np.tile([1.0] * 8 + [2.0] * 8, 40)
    mean_only = OnlineCorrection(**PAPER)
    covered = OnlineCorrection(alpha=0.2, alpha_up=0.6, quantile=0.9, window=40)
    slow = samples == 2.0
    hit_mean = np.mean((np.array(feed(mean_only, samples)) >= samples)[slow][20:])
    hit_q = np.mean((np.array(feed(covered, samples)) >= samples)[slow][20:])
    assert hit_mean < 0.2 and hit_q > 0.8


def test_quantile_without_errors_plans_with_the_mean() -> None:
    c = OnlineCorrection(alpha=0.2, quantile=0.9, window=30)
    assert c.ratio('layer2', 3) == 1.0
    feed(c, [3.0] * 60)  # the window holds only errors of the settled mean (~1.0)
    assert c.ratio('layer2', 3) == pytest.approx(3.0, rel=0.01)


def test_relax_moves_the_mean_and_the_errors_back_toward_the_profile() -> None:
    """Dropped frames measure nothing: a ratio widened by a burst of misses must not keep
    DEMUX dropping frames."""
    c = OnlineCorrection(alpha=0.2, alpha_up=0.5, quantile=0.9, window=10)
    feed(c, [1.0] * 5 + [4.0] * 5)  # a burst the mean lagged behind: large errors
    widened = c.ratio('layer2', 3)
    assert widened > 4.0
    c.relax()
    assert c.ratio('layer2', 3) < widened and len(c.errors[None]) == 10
    for _ in range(100):
        c.relax()
    assert c.ratio('layer2', 3) < 1.05


def test_shipped_default_is_the_quantile_correction() -> None:
    c = OnlineCorrection()
    assert (c.alpha, c.alpha_up, c.margin, c.quantile, c.window) == (0.2, 0.7, 0.0, 0.7, 50)
    assert not c.per_candidate


@pytest.mark.parametrize('kwargs', [dict(alpha=0.0), dict(alpha=1.5), dict(alpha_up=-0.1),
                                    dict(alpha_up=1.1), dict(margin=-1.0, quantile=0.0),
                                    dict(quantile=1.0), dict(quantile=-0.2),
                                    dict(margin=1.0, quantile=0.9), dict(window=0)])
def test_invalid_correction(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match='invalid online correction'):
        OnlineCorrection(**kwargs)


def test_slowdown_and_feasibility() -> None:
    assert slowdown(30.0, 20.0) == pytest.approx(1.5)
    assert feasible(20.0, 1.5, 30.0) and not feasible(20.0, 1.51, 30.0)
    assert feasible(0.0, 9.0, 1.0)  # nothing to compute: always feasible
    for bad in [(0.0, 20.0), (30.0, 0.0), (-1.0, 2.0)]:
        with pytest.raises(ConfigError, match='positive'):
            slowdown(*bad)
    with pytest.raises(ConfigError, match='SLO'):
        feasible(10.0, 1.0, 0.0)


def test_nearest_fill_takes_the_measurement_nearest_in_time() -> None:
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 4.5]
    values = [1.1, None, 2.0, None, None, 3.0]
    assert nearest_fill(times, values) == [1.1, 1.1, 2.0, 2.0, 3.0, 3.0]  # tie: earlier
    assert nearest_fill([5.0, 1.0], [None, 1.5]) == [1.5, 1.5]  # times need not be sorted
    with pytest.raises(ConfigError, match='every frame was dropped'):
        nearest_fill([0.0, 1.0], [None, None])
    with pytest.raises(ConfigError, match='2 times for 1 values'):
        nearest_fill([0.0, 1.0], [1.0])
