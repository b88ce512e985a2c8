"""CLG policies, predictors, accuracy comparator and DEMUX decisions."""

import numpy as np
import pytest

from neulens_ros.control.accuracy import AccuracyTable
from neulens_ros.control.clg import steps
from neulens_ros.control.demux import Demux, OnlineCorrection, SloConfig
from neulens_ros.control.feasibility import feasible
from neulens_ros.control.link_estimator import LinkState
from neulens_ros.control.predictor import (LinearModel, Predictor, ProfileRecord,
                                           held_out_error)
from neulens_ros.errors import ConfigError, DataError


def apply(levels, conf, policy, dw=2, theta=0.5, n=None, skip_last=True):
    current = list(levels)
    out = []
    for i, chosen in enumerate(steps(levels, conf, policy, dw, theta, skip_last)):
        for t in chosen:
            current[t] += 1
        out.append(list(current))
        if n is not None and i + 1 == n:
            break
    return out


def test_cs_k2_raises_low_confidence_tiles_cyclically_and_skips_last() -> None:
    # tiles 2 (0.1) and 0 (0.3) are below theta: raised first, dw = 2 at a time, to level 3;
    # then tiles 3 (0.6) and 1 (0.9); only then the same order again, to skip
    seq = apply([0, 1, 0, 2], [0.3, 0.9, 0.1, 0.6], 'cs', dw=2)
    assert seq == [[1, 1, 1, 2], [2, 1, 2, 2], [3, 1, 3, 2], [3, 2, 3, 3], [3, 3, 3, 3],
                   [4, 3, 4, 3], [4, 4, 4, 4]]


def test_cs_k3_dw4_narrows_kept_tiles_before_skipping_any() -> None:
    conf = [0.2, 0.9, 0.8, 0.1, 0.7, 0.95, 0.6, 0.85, 0.3]
    levels = [3, 0, 0, 4, 0, 0, 0, 0, 3]
    seq = apply(levels, conf, 'cs', dw=4)
    # below theta: tiles 3 (skipped by the gate), 0 and 8 (already narrowest): none can be
    # narrowed, so the rest in confidence order 6, 4, 2, 7, 1, 5, four at a time, cyclically
    assert seq[0] == [3, 0, 1, 4, 1, 0, 1, 1, 3]
    assert seq[1] == [3, 1, 1, 4, 2, 1, 2, 1, 3]  # 1, 5, then 6, 4 again
    assert seq[2] == [3, 2, 2, 4, 2, 2, 2, 2, 3]  # 2, 7, 1, 5
    first_skip = next(i for i, s in enumerate(seq) if s.count(4) > 1)
    assert seq[first_skip - 1] == [3, 3, 3, 4, 3, 3, 3, 3, 3]  # every kept tile narrowest
    assert seq[first_skip] == [4, 3, 3, 4, 3, 3, 3, 3, 4]  # then the low ones skip first
    assert seq[-1] == [4] * 9


def test_plain_order_skips_a_tile_as_soon_as_its_turn_comes() -> None:
    conf = [0.2, 0.9, 0.8, 0.1, 0.7, 0.95, 0.6, 0.85, 0.3]
    levels = [3, 0, 0, 4, 0, 0, 0, 0, 3]
    seq = apply(levels, conf, 'cs', dw=4, n=2, skip_last=False)
    assert seq[0] == [4, 0, 0, 4, 0, 0, 0, 0, 4]  # the low-confidence tiles skip at once
    assert seq[1] == [4, 0, 1, 4, 1, 0, 1, 1, 4]
    assert apply([0, 3, 4, 1], [0.5] * 4, 'uniform', n=2, skip_last=False) == [
        [1, 4, 4, 2], [2, 4, 4, 3]]
    assert apply([0, 0], [0.5] * 2, 'image', skip_last=False)[-1] == [3, 3]  # never skips


def test_cs_k4_terminates_with_everything_skipped() -> None:
    rng = np.random.default_rng(0)
    levels = list(rng.integers(0, 5, 16))
    seq = apply(levels, list(rng.random(16)), 'cs', dw=5)
    assert seq[-1] == [4] * 16 and len(seq) < 16 * 4
    first_skip = next(i for i, s in enumerate(seq) if s.count(4) > levels.count(4))
    assert first_skip > 0  # nothing skipped before every kept tile was narrowest:
    assert all(v == 3 for v, gate in zip(seq[first_skip - 1], levels, strict=True) if gate < 4)


def test_uniform_min_fixed() -> None:
    assert apply([0, 3, 4, 1], [0.5] * 4, 'uniform') == [
        [1, 3, 4, 2], [2, 3, 4, 3], [3, 3, 4, 3], [4, 4, 4, 4]]
    assert apply([0, 3, 4, 1], [0.4, 0.1, 0.05, 0.9], 'min') == [
        [1, 3, 4, 1], [2, 3, 4, 1], [3, 3, 4, 1], [3, 3, 4, 2], [3, 3, 4, 3],
        [3, 4, 4, 3], [4, 4, 4, 3], [4, 4, 4, 4]]
    assert apply([0, 0], [0.1, 0.1], 'fixed') == []
    with pytest.raises(ConfigError):
        list(steps([0], [0.1], 'greedy', 1, 0.5))
    with pytest.raises(ConfigError):
        list(steps([0], [0.1], 'cs', 0, 0.5))


# Synthetic profile: a tile at level l costs (4 - l) ms (skip free); back 10 ms per P.
P_OPTS = ('stem', 'layer2')


def synthetic_records(noise: float = 0.0, seed: int = 0) -> list[ProfileRecord]:
    rng = np.random.default_rng(seed)
    recs = []
    for p, scale in zip(P_OPTS, (1.0, 2.0), strict=True):
        recs.append(ProfileRecord(p, 0, (0,) * 5, 10.0, 50.0))
        for k in (2, 3, 4):
            for i in range(30):
                levels = rng.integers(0, 5, k * k) if i >= 5 else np.full(k * k, i)
                hist = np.bincount(levels, minlength=5)
                lat = 1.0 + scale * float(np.dot(hist, [4, 3, 2, 1, 0]))
                mem = 5.0 + float(np.dot(hist, [8, 6, 4, 2, 0]))
                recs.append(ProfileRecord(p, k, tuple(int(v) for v in hist),
                                          lat * (1 + rng.normal(0, noise)), mem))
    return recs


def test_predictor_fits_and_round_trips(tmp_path) -> None:
    pred = Predictor.fit(synthetic_records(noise=0.02))
    err = held_out_error(pred, synthetic_records(noise=0.02, seed=1))
    assert err['latency_mape'] < 0.03 and err['memory_mape'] < 0.03
    lat, mem = pred.predict('layer2', 3, np.array([9, 0, 0, 0, 0]))
    assert lat == pytest.approx(10 + 1 + 2 * 36, rel=0.03) and mem == pytest.approx(77, rel=0.01)
    pred.save(tmp_path / 'p.json')
    again = Predictor.load(tmp_path / 'p.json')
    assert again.predict('stem', 2, np.array([1, 1, 1, 1, 0])) == pytest.approx(
        pred.predict('stem', 2, np.array([1, 1, 1, 1, 0])))
    with pytest.raises(ConfigError, match='no profile'):
        pred.predict('layer1', 3, np.zeros(5))
    with pytest.raises(DataError, match='back record'):
        Predictor.fit([r for r in synthetic_records() if r.k != 0])
    with pytest.raises(DataError, match='not found'):
        Predictor.load(tmp_path / 'missing.json')


def make_demux(latency_ms: float, policy: str = 'cs', **kw) -> Demux:
    pred = Predictor.fit(synthetic_records())
    table = AccuracyTable({'stem|2': 0.5, 'stem|3': 1.0, 'stem|4': 2.0, 'layer2|2': 0.2,
                           'layer2|3': 0.4, 'layer2|4': 0.8}, 0.0, 10.0)
    cfg = SloConfig(latency_ms=latency_ms, policy=policy, p_options=P_OPTS, **kw)
    pixels = {(p, k): np.full(k * k, 320 * 240 // (k * k)) for k in (2, 3, 4) for p in P_OPTS}
    return Demux(pred, table, cfg, pixels, bytes_per_pixel=0.5)


def gate(k_levels: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(3)
    levels = {k: [k_levels] * (k * k) for k in (2, 3, 4)}
    conf = {k: list(rng.random(k * k)) for k in (2, 3, 4)}
    return levels, conf


def test_loose_slo_keeps_the_gate_choice_and_least_loss() -> None:
    d = make_demux(1000.0).decide(*gate())
    assert d.fits_slo and d.levels == d.gate_levels
    assert (d.p, d.k) == ('layer2', 2)  # least tiling loss
    assert d.decision_time_ms < 5.0


def test_tighter_slo_raises_levels_and_never_exceeds_it() -> None:
    raised = []
    for slo in (80.0, 50.0, 30.0, 20.0):
        d = make_demux(slo).decide(*gate())
        assert d.fits_slo and d.predicted_latency_ms <= slo + 1e-6
        raised.append(sum(d.levels) - sum(d.gate_levels))
    assert raised == sorted(raised) and raised[-1] > raised[0]


def test_impossible_slo_drops_the_frame_flagged() -> None:
    d = make_demux(5.0).decide(*gate())
    assert not d.fits_slo
    assert set(d.levels) == {4} and d.predicted_latency_ms == 0.0  # nothing computed or sent
    empty = make_demux(5.0).decide(*gate(k_levels=4))  # the gate itself skips everything
    assert empty.fits_slo and empty.predicted_latency_ms == 0.0


def test_correction_margin_adds_the_measured_jitter() -> None:
    steady, margin = (OnlineCorrection(margin=2.0, quantile=0.0) for _ in range(2))
    for i in range(50):
        steady.update('layer2', 3, 10.0, 15.0)
        margin.update('layer2', 3, 10.0, 10.0 if i % 2 else 20.0)  # same mean, jittery
    assert steady.ratio('layer2', 3) == pytest.approx(1.5, abs=0.01)
    assert margin.ratio('layer2', 3) > 1.5 + 2 * 0.3  # mean ~1.5 + 2 x deviation ~0.5
    assert OnlineCorrection().ratio('layer2', 3) == 1.0


def test_correction_relaxes_without_measurements() -> None:
    c = OnlineCorrection()
    for _ in range(30):
        c.update('layer2', 3, 10.0, 30.0)
    assert c.ratio('layer2', 3) > 2.5
    for _ in range(60):
        c.relax()
    assert 1.0 < c.ratio('layer2', 3) < 1.2


def test_fixed_policy_ignores_the_gate() -> None:
    d = make_demux(0.0, policy='fixed', fixed_level=2).decide(*gate())
    assert set(d.levels) == {2}


def test_slow_link_sends_fewer_tiles() -> None:
    fast = make_demux(60.0).decide(*gate(), link=LinkState(500.0, 1.0))
    slow = make_demux(60.0).decide(*gate(), link=LinkState(4.0, 10.0))
    assert slow.transmission_ms > fast.transmission_ms - 1e-9
    assert slow.levels.count(4) >= fast.levels.count(4)
    assert slow.fits_slo and slow.predicted_latency_ms <= 60.0


def test_demux_narrows_kept_tiles_before_skipping_any() -> None:
    narrowed = make_demux(20.0).decide(*gate())
    plain = make_demux(20.0, skip_last=False).decide(*gate())
    assert narrowed.fits_slo and plain.fits_slo
    assert 4 not in narrowed.levels and max(narrowed.levels) > 0  # compressed, none skipped
    assert 4 in plain.levels  # the plain order skipped the least confident tiles


def test_slow_link_skips_without_narrowing_the_sent_tiles() -> None:
    """Narrowing saves no bytes: when the link is what does not fit, sent tiles keep the
    gate's level."""
    d = make_demux(60.0).decide(*gate(), link=LinkState(4.0, 10.0))
    assert d.fits_slo and 4 in d.levels
    assert all(v == g for v, g in zip(d.levels, d.gate_levels, strict=True) if v != 4)


def test_online_correction_tracks_a_busier_machine() -> None:
    demux = make_demux(40.0)
    demux.correction = OnlineCorrection(quantile=0.0)  # the mean alone
    before = demux.decide(*gate())
    for _ in range(30):  # the machine got twice as slow
        demux.correction.update(before.p, before.k, 10.0, 20.0)
    assert demux.correction.ratio(before.p, before.k) == pytest.approx(2.0, rel=0.01)
    after = demux.decide(*gate())
    assert sum(after.levels) > sum(before.levels) or (after.p, after.k) != (before.p, before.k)
    c = OnlineCorrection()
    c.update('x', 2, 0.0, 5.0)
    assert c.ratio('x', 2) == 1.0


def test_correction_is_machine_wide_unless_per_candidate() -> None:
    """Load learned on the candidate that ran scales the one DEMUX moves to."""
    machine, candidate = (OnlineCorrection(quantile=0.0, per_candidate=per)
                          for per in (False, True))
    for c in (machine, candidate):
        for _ in range(30):
            c.update('layer2', 3, 10.0, 20.0)
    assert machine.ratio('stem', 2) == pytest.approx(2.0, rel=0.01)
    assert candidate.ratio('stem', 2) == 1.0
    assert candidate.ratio('layer2', 3) == pytest.approx(2.0, rel=0.01)


def test_busier_machine_is_planned_for_on_a_candidate_that_has_not_run() -> None:
    """After the load is learned on one (P, k), DEMUX's prediction for every other (P, k)
    includes it too, so the frame it moves to still fits."""
    demux = make_demux(40.0)
    demux.correction = OnlineCorrection(quantile=0.0)  # the mean alone
    before = demux.decide(*gate())
    for _ in range(30):
        demux.correction.update(before.p, before.k, 10.0, 20.0)
    after = demux.decide(*gate())
    assert after.fits_slo and after.predicted_latency_ms <= 40.0
    base = demux.predictor.predict(after.p, after.k, np.bincount(after.levels, minlength=5))[0]
    assert after.predicted_latency_ms == pytest.approx(2.0 * base, rel=0.02)


@pytest.mark.parametrize('kwargs', [dict(alpha=0.0), dict(alpha=1.5), dict(margin=-1.0)])
def test_invalid_online_correction(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        OnlineCorrection(**kwargs)


@pytest.mark.parametrize('kwargs', [dict(latency_ms=-1), dict(policy='random'),
                                    dict(fixed_level=5), dict(theta_f=1.5),
                                    dict(k_options=()), dict(delta_w={2: 2}),
                                    dict(k_options=(5,), delta_w={5: 2})])
def test_invalid_slo_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SloConfig(**kwargs)


def test_accuracy_table_from_evaluation(tmp_path) -> None:
    results = {'variants': {
        'untiled': {'map50': 0.90}, 'tiled_l0_layer2_k3': {'map50': 0.88},
        'uniform_0': {'map50': 0.88}, 'cgg': {'map50': 0.87}, 'cgg_plus1': {'map50': 0.80},
        'cgg_plus2': {'map50': 0.71}}}
    table = AccuracyTable.from_evaluation(results)
    assert table.tiling_loss['layer2|3'] == pytest.approx(2.0)
    assert table.gate_loss == pytest.approx(1.0)
    assert table.slope == pytest.approx(7.5)
    assert table.expected_loss('layer2', 3, [1] * 9, [0] * 9) == pytest.approx(10.5)
    table.save(tmp_path / 'a.json')
    assert AccuracyTable.load(tmp_path / 'a.json') == table
    with pytest.raises(DataError):
        AccuracyTable.load(tmp_path / 'nope.json')


def test_linear_model() -> None:
    m = LinearModel.fit(np.eye(5), np.arange(5.0) + 1)
    assert m(np.eye(5)[2]) == pytest.approx(3.0)


def test_image_policy_raises_every_tile_together_and_never_skips() -> None:
    assert apply([0, 0, 0, 0], [0.1, 0.9, 0.5, 0.2], 'image') == [
        [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]
    assert apply([0] * 9, [0.5] * 9, 'image', dw=4)[-1] == [3] * 9


def test_image_policy_ignores_the_gate_and_keeps_the_frame() -> None:
    loose = make_demux(0.0, policy='image').decide(*gate(k_levels=2))
    assert set(loose.levels) == {0} and set(loose.gate_levels) == {0}
    tight = make_demux(1.0, policy='image').decide(*gate())  # nothing fits: cheapest, flagged
    assert not tight.fits_slo and len(set(tight.levels)) == 1 and 4 not in tight.levels


def test_floor_is_the_cheapest_plan_keeping_every_kept_tile() -> None:
    # synthetic profile: a tile at level 3 costs 1 ms at stem (2 ms at layer2), + 1 + back 10
    demux = make_demux(1000.0)
    levels, conf = gate()
    assert demux.decide(levels, conf).floor_ms == pytest.approx(1 + 4 * 1 + 10, abs=0.05)
    levels[2] = [0, 4, 4, 4]  # the gate keeps one tile of k = 2
    assert demux.floor_ms(levels) == pytest.approx(1 + 1 + 10, abs=0.05)
    levels[3] = [4] * 9  # ... and skips every tile of k = 3: nothing to compute
    assert demux.floor_ms(levels) == 0.0


@pytest.mark.parametrize('ratio', [1.0, 1.6])
def test_demux_keeps_every_kept_tile_exactly_when_the_floor_is_feasible(ratio: float) -> None:
    """The floor is DEMUX's own boundary: at the corrected speed, a frame is feasible iff
    DEMUX fits it without skipping a tile the gate kept."""
    for slo in (14.0, 16.0, 22.0, 25.0, 40.0):
        demux = make_demux(slo)
        demux.correction = OnlineCorrection(alpha=1.0, alpha_up=0.0, quantile=0.0)
        demux.correction.update('stem', 2, 10.0, 10.0 * ratio)
        d = demux.decide(*gate())
        assert feasible(d.floor_ms, ratio, slo) == (d.fits_slo and 4 not in d.levels)


def test_a_safety_margin_never_drops_a_frame_the_mean_would_compute() -> None:
    """Planned with mean x quantile nothing fits (x3: even one tile misses 25 ms), with the
    mean (x1.5) every kept tile fits narrowed: DEMUX computes the frame at the mean."""
    from collections import deque
    demux = make_demux(25.0)
    demux.correction = OnlineCorrection(quantile=0.9, window=10)
    demux.correction.ratios[None] = 1.5
    demux.correction.errors[None] = deque([2.0] * 10, maxlen=10)
    assert demux.correction.ratio('stem', 2) == pytest.approx(3.0)
    d = demux.decide(*gate())
    assert d.fits_slo and 4 not in d.levels and d.predicted_latency_ms <= 25.0
    base = demux.predictor.predict(d.p, d.k, np.bincount(d.levels, minlength=5))[0]
    assert d.predicted_latency_ms == pytest.approx(1.5 * base, rel=0.02)
    demux.correction = OnlineCorrection(quantile=0.0)  # the mean alone at x3: dropped
    demux.correction.ratios[None] = 3.0
    dropped = demux.decide(*gate())
    assert not dropped.fits_slo and set(dropped.levels) == {4}
