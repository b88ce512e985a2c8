"""Online link estimate (RTT + bandwidth) from per-frame replies."""

import numpy as np
import pytest

from neulens_ros.control.link_estimator import LinkEstimator, LinkState
from neulens_ros.errors import ConfigError


def simulate(est: LinkEstimator, rtt_ms: float, mbps: float, sizes: np.ndarray,
             noise_ms: float = 0.0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for size in sizes:
        processing = rng.uniform(5.0, 40.0)
        network = rtt_ms + 8.0 * size / (mbps * 1e3) + rng.normal(0.0, noise_ms)
        est.add(size, network + processing, processing)


@pytest.mark.parametrize('rtt_ms,mbps', [(4.0, 50.0), (30.0, 20.0), (80.0, 8.0)])
def test_recovers_rtt_and_bandwidth(rtt_ms: float, mbps: float) -> None:
    est = LinkEstimator(window=40)
    sizes = np.random.default_rng(1).uniform(10_000, 300_000, 40)
    simulate(est, rtt_ms, mbps, sizes, noise_ms=0.3)
    state = est.state()
    assert state.samples == 40
    assert state.bandwidth_mbps == pytest.approx(mbps, rel=0.05)
    assert state.rtt_ms == pytest.approx(rtt_ms, abs=1.0)
    assert state.transmission_ms(100_000) == pytest.approx(rtt_ms + 800 / mbps, rel=0.05)


def test_constant_sizes_keep_the_prior_bandwidth() -> None:
    est = LinkEstimator(prior_bandwidth_mbps=25.0)
    simulate(est, 10.0, 50.0, np.full(20, 20_000.0))
    state = est.state()
    assert state.bandwidth_mbps == 25.0  # no spread: slope not identifiable
    # the rtt absorbs the prior's error at this size, so the prediction there stays right
    assert state.rtt_ms == pytest.approx(10.0 + 8 * 20_000 / 50e3 - 8 * 20_000 / 25e3)
    assert state.transmission_ms(20_000) == pytest.approx(10.0 + 8 * 20_000 / 50e3)


def test_override_and_window() -> None:
    est = LinkEstimator(window=5)
    simulate(est, 10.0, 20.0, np.linspace(1e4, 3e5, 12))
    assert est.state().samples == 5
    assert est.state(bandwidth_override_mbps=100.0).bandwidth_mbps == 100.0


def test_bad_samples_are_ignored_and_empty_state() -> None:
    est = LinkEstimator()
    assert est.state() == LinkState(0.0, 0.0, 0)
    assert est.state().transmission_ms(1e6) == 0.0
    est.add(1000, 5.0, 10.0)  # processing longer than the round trip: clocks disagree
    est.add(-1, 10.0, 1.0)
    est.add(1000, float('nan'), 1.0)
    assert est.state().samples == 0


@pytest.mark.parametrize('kwargs', [{'window': 1}, {'prior_bandwidth_mbps': -1.0},
                                    {'min_spread_bytes': 0.0}])
def test_invalid_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        LinkEstimator(**kwargs)
