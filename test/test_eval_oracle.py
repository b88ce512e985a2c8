"""The ground-truth oracle's tile levels on hand-made boxes, and the MAC budget comparison
(Pareto-front reading, gains, captured share) on made-up curves."""

from pathlib import Path

import numpy as np
import pytest
import torch

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.eval.detector import budgets, plot_results
from neulens_ros.eval.oracle import (ORACLE_FAMILY, OracleRule, at_budget, budget_rows,
                                     oracle_levels, pareto_front, random_levels)
from neulens_ros.gate.tile_kinds import CENTRE, EMPTY, TOUCHED, owned_blocks, tile_kinds
from neulens_ros.supernet.slim import LEVEL_SKIP
from neulens_ros.supernet.tiling import tile_grid
from neulens_ros.tools.eval_detector import print_budgets

CHAIN = [(3, 2, 1), (3, 2, 1), (3, 2, 1)]  # a front of total stride 8, as at P = layer2
# owned block edges in input pixels of a 256 x 192 frame: 32 x 24 stride-8 cells split k ways
EDGES = {2: ([0, 128, 256], [0, 96, 192]),
         3: ([0, 88, 168, 256], [0, 64, 128, 192]),
         4: ([0, 64, 128, 192, 256], [0, 48, 96, 144, 192])}


def grid(k: int, width: int = 256, height: int = 192, chain: list = CHAIN):
    return tile_grid(chain, width, height, k, 'paper')


@pytest.mark.parametrize('k', sorted(EDGES))
def test_owned_blocks_are_the_stitched_blocks_in_pixels(k: int) -> None:
    xs, ys = EDGES[k]
    expected = [[xs[c], ys[r], xs[c + 1], ys[r + 1]] for r in range(k) for c in range(k)]
    assert owned_blocks(grid(k)).tolist() == expected


@pytest.mark.parametrize('chain', [CHAIN, [(2, 2, 0)] * 3])
def test_owned_blocks_end_at_the_frame_edge(chain: list) -> None:
    """250 x 190 is no multiple of the stride: the stitched map covers a little more (padded
    chain) or less (unpadded) than the frame; the owned blocks end at its edge."""
    owned = owned_blocks(grid(3, 250, 190, chain))
    cover = np.zeros((190, 250), int)
    for x0, y0, x1, y1 in owned:
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()
    assert owned[:, 2].max() == 250 and owned[:, 3].max() == 190


@pytest.mark.parametrize('k', sorted(EDGES))
def test_centre_touched_and_empty_tiles(k: int) -> None:
    (x1, *_), (y1, *_) = (EDGES[k][0][1:], EDGES[k][1][1:])  # first inner edges
    last_x, last_y = EDGES[k][0][-2], EDGES[k][1][-2]
    boxes = np.array([
        [2, 2, x1 + 6, 10],  # centre in tile (0, 0), reaches into (0, 1)
        [x1 - 10, y1 + 2, x1 + 10, y1 + 12],  # centre on the edge x1: owned by (1, 1)
        [last_x + 2, last_y + 2, last_x + 8, last_y + 8],  # inside the last tile
    ], float)
    expected = np.full((k, k), EMPTY)
    expected[0, 1] = expected[1, 0] = TOUCHED
    expected[0, 0] = expected[1, 1] = expected[k - 1, k - 1] = CENTRE
    np.testing.assert_array_equal(tile_kinds(boxes, owned_blocks(grid(k))), expected.ravel())


def test_a_box_ending_on_an_edge_does_not_touch_the_next_tile() -> None:
    kinds = tile_kinds(np.array([[60, 10, 88, 50]], float), owned_blocks(grid(3)))
    assert kinds.tolist() == [CENTRE] + [EMPTY] * 8


def test_oracle_levels_per_rule_and_image() -> None:
    boxes = [np.array([[2, 2, 100, 10]], float), np.zeros((0, 4))]
    rule = OracleRule(1, 3, LEVEL_SKIP)
    levels = oracle_levels(boxes, grid(3), [rule])
    assert list(levels) == ['oracle_1_3_skip']
    np.testing.assert_array_equal(levels[rule.name],
                                  [[1, 3] + [LEVEL_SKIP] * 7, [LEVEL_SKIP] * 9])
    family = oracle_levels(boxes, grid(3))
    assert len(family) == len(ORACLE_FAMILY) and all(v.shape == (2, 9)
                                                     for v in family.values())


@pytest.mark.parametrize('levels, message', [((0, 5, 4), 'in 0..4'), ((-1, 3, 4), 'in 0..4'),
                                             ((3, 1, 4), 'centre <= touched <= empty'),
                                             ((0, 3, 2), 'centre <= touched <= empty')])
def test_bad_oracle_rules_are_config_errors(levels: tuple[int, int, int],
                                            message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OracleRule(*levels)


def test_inverted_boxes_are_data_errors() -> None:
    with pytest.raises(DataError, match='x0 <= x1'):
        tile_kinds(np.array([[50, 10, 20, 30]], float), owned_blocks(grid(2)))


POINTS = [(100.0, 0.5), (150.0, 0.4), (200.0, 0.7), (200.0, 0.6), (300.0, 0.8)]


def test_pareto_front_drops_dominated_points() -> None:
    assert pareto_front(POINTS) == [(100.0, 0.5), (200.0, 0.7), (300.0, 0.8)]


@pytest.mark.parametrize('macs, expected', [(100, 0.5), (150, 0.6), (250, 0.75), (400, 0.8),
                                            (50, None)])
def test_at_budget_reads_the_front(macs: float, expected: float | None) -> None:
    assert at_budget(POINTS, macs) == pytest.approx(expected)


def test_at_budget_below_the_cheapest_point() -> None:
    assert at_budget(POINTS, 50, keep_below=True) == pytest.approx(0.5)
    with pytest.raises(DataError, match='no .MACs, mAP. points'):
        at_budget([], 100)


WIDTH = [(100.0, 0.6), (200.0, 0.8)]
ORACLE = [(80.0, 0.7), (160.0, 0.9)]
CGG = [(120.0, 0.75)]


def test_budget_rows_gains_and_captured_share() -> None:
    low, mid = budget_rows(WIDTH, ORACLE, CGG, 200.0, (0.45, 0.7))
    # 90 MACs: width below its narrowest point keeps its mAP; the CGG cannot get there
    assert low['width_below_narrowest'] and low['width_map50'] == pytest.approx(0.6)
    assert low['oracle_map50'] == pytest.approx(0.725)
    assert low['cgg_map50'] is None and low['captured'] is None
    # 140 MACs: width 0.68, oracle 0.85, CGG 0.75 (its dearest point is cheaper)
    assert not mid['width_below_narrowest'] and mid['macs'] == pytest.approx(140.0)
    assert mid['oracle_gain'] == pytest.approx(0.17)
    assert mid['cgg_gain'] == pytest.approx(0.07)
    assert mid['captured'] == pytest.approx(0.07 / 0.17)


def test_no_captured_share_without_an_oracle_gain() -> None:
    row, = budget_rows([(100.0, 0.8), (200.0, 0.9)], [(100.0, 0.7)], [(100.0, 0.85)], 200.0,
                       (0.75,))
    assert row['oracle_gain'] == pytest.approx(-0.15) and row['captured'] is None
    assert row['cgg_gain'] == pytest.approx(0.0)


@pytest.mark.parametrize('fractions, level0, message', [
    ((0.4, 0.0), 100.0, 'budget fractions must be in'), ((1.5,), 100.0, r'\[1.5\]'),
    ((-0.1,), 100.0, 'budget fractions'), ((0.5,), 0.0, 'level 0 MACs must be positive')])
def test_bad_budgets_are_config_errors(fractions: tuple[float, ...], level0: float,
                                       message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        budget_rows(WIDTH, ORACLE, CGG, level0, fractions)


COSTS = np.array([[10, 6, 3, 1, 0]] * 4, float)  # [tiles, levels] MACs, level 4 = skip


@pytest.mark.parametrize('budget', [40, 25, 12, 4, 0])
def test_random_levels_fit_the_budget(budget: float) -> None:
    levels = random_levels(COSTS, budget, np.random.default_rng(0))
    assert COSTS[np.arange(4), levels].sum() <= budget
    # one level less on any raised tile would not fit: raised only as far as needed
    assert all(COSTS[np.arange(4), levels].sum() - COSTS[t, levels[t]] + COSTS[t, levels[t] - 1]
               > budget for t in np.flatnonzero(levels))


def test_random_levels_skip_everything_when_nothing_fits() -> None:
    levels = random_levels(COSTS, -1.0, np.random.default_rng(0))
    assert levels.tolist() == [LEVEL_SKIP] * 4


def made_up_results() -> dict:
    """Evaluation results of made-up numbers in the shape `evaluate` returns."""
    def variant(macs: float, map50: float) -> dict:
        return {'macs': macs * 1e6, 'map50': map50}
    variants = {'untiled': variant(245, 0.92), 'cgg_histogram_random_tiles': variant(142, 0.6)}
    variants.update({f'uniform_{lv}': variant(m, a) for lv, (m, a) in enumerate(
        [(236, 0.9), (187, 0.89), (129, 0.88), (104, 0.84)])})
    variants.update({'cgg': variant(142, 0.895), 'cgg_plus1': variant(120, 0.85),
                     'oracle_3_3_skip': variant(92, 0.85), 'oracle_0_3_skip': variant(144, 0.9),
                     'random_tiles_40': variant(94, 0.3), 'random_tiles_55': variant(129, 0.5),
                     'random_tiles_70': variant(165, 0.7)})
    families = {'width': [f'uniform_{lv}' for lv in range(4)], 'cgg': ['cgg', 'cgg_plus1'],
                'oracle': ['oracle_3_3_skip', 'oracle_0_3_skip']}
    return {'variants': variants, 'families': families,
            'budgets': budgets(variants, families), 'headline': {'gate_labels': 'paper'}}


def test_budgets_of_an_evaluation_plot_and_print(tmp_path, capsys) -> None:
    results = made_up_results()
    rows = results['budgets']
    assert [r['fraction'] for r in rows] == [0.40, 0.55, 0.70]
    assert [r['random_tiles_map50'] for r in rows] == [0.3, 0.5, 0.7]
    assert rows[0]['cgg_map50'] is None and rows[0]['width_below_narrowest']
    assert rows[2]['oracle_map50'] == pytest.approx(0.9)  # above the oracle's dearest point
    png = plot_results(results, tmp_path)
    assert png.is_file() and png.stat().st_size > 10_000
    print_budgets(rows)
    out = capsys.readouterr().out
    assert 'captured' in out.splitlines()[0] and '0.840*' in out and 'lower bounds' in out


def test_budgets_read_the_untiled_width_floor_where_it_was_run() -> None:
    results = made_up_results()
    assert all('untiled_width_map50' not in row for row in results['budgets'])
    variants, families = results['variants'], results['families']
    variants.update({f'untiled_width_{lv}': {'macs': m * 1e6, 'map50': a} for lv, (m, a) in
                     enumerate([(400, 0.93), (300, 0.92), (200, 0.9), (100, 0.8)])})
    rows = budgets(variants, {**families, 'untiled_width': [f'untiled_width_{lv}'
                                                             for lv in range(4)]})
    # 40 / 55 / 70% of level 0's 236 MMACs: below the narrowest (its mAP), then linear
    floors = [0.8, 0.8 + 0.1 * (129.8 - 100) / 100, 0.8 + 0.1 * (165.2 - 100) / 100]
    for row, floor in zip(rows, floors, strict=True):
        assert row['untiled_width_map50'] == pytest.approx(floor)
        assert row['oracle_gain_untiled'] == pytest.approx(row['oracle_map50'] - floor)
    assert rows[0]['cgg_gain_untiled'] is None  # the CGG cannot reach 40%
    assert rows[2]['cgg_gain_untiled'] == pytest.approx(rows[2]['cgg_map50'] - floors[2])


@pytest.mark.slow
def test_evaluate_runs_the_oracle_and_random_tiles_beside_the_cgg() -> None:
    from neulens_ros.eval.detector import CGG_CAUTIONS, evaluate
    from neulens_ros.models.names import CHECKPOINTS
    from neulens_ros.models.zoo import load_detector, load_gate
    from neulens_ros.train.data import SetSpec, render_set
    detector_name, gate_name, _ = CHECKPOINTS['easy']  # easy scenes: the easy checkpoints
    model, _ = load_detector(detector_name)
    gate, _ = load_gate(gate_name)
    size = (model.config.input_width, model.config.input_height)
    data = render_set(SetSpec(0, 3, (320, 240), size), progress=False)
    results = evaluate(model, gate, data, 0.1, progress=False)
    variants, families = results['variants'], results['families']
    assert families['oracle'] == [rule.name for rule in ORACLE_FAMILY]
    assert families['cgg'] == ['cgg', 'cgg_plus1', 'cgg_plus2'] + [
        f'cgg_caution_{c}' for c in CGG_CAUTIONS]
    level0 = variants['uniform_0']['macs']
    assert all(variants[f'random_tiles_{round(100 * f)}']['macs'] <= f * level0
               for f in (0.4, 0.55, 0.7))
    assert [row['fraction'] for row in results['budgets']] == [0.4, 0.55, 0.7]


@pytest.mark.parametrize('labels', ['paper', 'kinds'])
def test_a_kinds_gate_family_has_every_oracle_rule_on_its_kinds(labels: str) -> None:
    from neulens_ros.eval.detector import CGG_CAUTIONS, _cgg_family, kinds_name
    from neulens_ros.gate.cgg import CompressionGuidingGate
    from neulens_ros.gate.kind_labels import chosen_kinds
    from neulens_ros.train.data import SetSpec, render_set
    torch.manual_seed(0)
    gate = CompressionGuidingGate(context=8 if labels == 'kinds' else 0).eval()
    data = render_set(SetSpec(0, 2, (160, 120), (128, 96)), progress=False)
    family = _cgg_family(gate, data, 0.0, labels, None)
    plain = ['cgg', 'cgg_plus1', 'cgg_plus2'] + [f'cgg_caution_{c}' for c in CGG_CAUTIONS
                                                 if c != 0.0]
    rules = [kinds_name(rule.name) for rule in ORACLE_FAMILY] if labels == 'kinds' else []
    assert list(family) == plain + rules
    kinds = chosen_kinds(family['cgg'])
    for rule in ORACLE_FAMILY[:len(rules)]:
        assert np.array_equal(family[kinds_name(rule.name)], rule.levels(kinds))
    assert kinds_name('oracle_2_3_skip') == 'cgg_kinds_2_3_skip'


def test_a_calibrated_kind_rule_levels_the_cgg_and_leaves_the_kinds_family() -> None:
    from neulens_ros.eval.detector import CGG_CAUTIONS, _cgg_family, kinds_name
    from neulens_ros.gate.calibration import gate_levels
    from neulens_ros.gate.cgg import CompressionGuidingGate
    from neulens_ros.gate.kind_labels import chosen_kinds
    from neulens_ros.train.data import SetSpec, render_set
    gate = CompressionGuidingGate(context=8).eval()
    with torch.no_grad():  # every tile a centre at caution 0; ties (caution -1) keep level 0
        gate.fc.weight.zero_()
        gate.fc.bias.copy_(-torch.arange(5, dtype=torch.float32))
    data = render_set(SetSpec(0, 2, (160, 120), (128, 96)), progress=False)
    rule = OracleRule(1, 3, LEVEL_SKIP)
    plain, ruled = (_cgg_family(gate, data, 0.0, 'kinds', r) for r in (None, rule))
    raw = gate_levels(gate, data, 3, 0.0)
    assert (raw == 0).any() and not np.array_equal(plain['cgg'], ruled['cgg'])  # it moves
    assert np.array_equal(ruled['cgg'], rule.levels(chosen_kinds(raw)))
    assert np.array_equal(ruled['cgg'], ruled[kinds_name(rule.name)])
    assert np.array_equal(ruled['cgg_plus1'], np.minimum(ruled['cgg'] + 1, LEVEL_SKIP))
    other = next(c for c in CGG_CAUTIONS if c != 0.0)
    assert np.array_equal(ruled[f'cgg_caution_{other}'],
                          rule.levels(chosen_kinds(gate_levels(gate, data, 3, other))))
    # the kinds family reads the gate's own kinds, not the levelled ones
    assert all(np.array_equal(plain[name], ruled[name]) for name in plain
               if name.startswith('cgg_kinds_'))


def test_evaluate_refuses_a_kind_rule_for_a_paper_gate() -> None:
    from neulens_ros.eval.detector import evaluate
    from neulens_ros.gate.cgg import CompressionGuidingGate
    from neulens_ros.supernet.detector import DetectorConfig, TileDetector
    from neulens_ros.train.data import SetSpec, render_set
    data = render_set(SetSpec(0, 1, (160, 120), (128, 96)), progress=False)
    with pytest.raises(ConfigError, match='needs a gate on tile kinds'):
        evaluate(TileDetector(DetectorConfig(input_width=128, input_height=96)),
                 CompressionGuidingGate(), data, gate_labels='paper',
                 rule=OracleRule(1, 3, LEVEL_SKIP))


def test_evaluate_refuses_unknown_gate_labels() -> None:
    from neulens_ros.eval.detector import evaluate
    from neulens_ros.gate.cgg import CompressionGuidingGate
    from neulens_ros.supernet.detector import DetectorConfig, TileDetector
    from neulens_ros.train.data import SetSpec, render_set
    data = render_set(SetSpec(0, 1, (160, 120), (128, 96)), progress=False)
    with pytest.raises(ConfigError, match="gate labels 'boxes' are not one of"):
        evaluate(TileDetector(DetectorConfig(input_width=128, input_height=96)),
                 CompressionGuidingGate(), data, gate_labels='boxes')


def test_a_paper_gate_has_no_kinds_family_and_unknown_labels_are_refused() -> None:
    from neulens_ros.eval.detector import kinds_family
    assert kinds_family(np.zeros((2, 9), np.int64), 'paper') == {}
    with pytest.raises(ConfigError, match="gate labels 'boxes' are not one of"):
        kinds_family(np.zeros((2, 9), np.int64), 'boxes')


@pytest.mark.parametrize('labels, point', [('paper', (-0.5, None)),
                                           ('kinds', (0.5, OracleRule(0, 3, LEVEL_SKIP)))])
def test_the_gate_runs_at_its_calibrated_point_for_each_budget(labels: str, point) -> None:  # noqa: ANN001
    from neulens_ros.eval.detector import _cgg_family, budget_name
    from neulens_ros.gate.calibration import gate_levels
    from neulens_ros.gate.cgg import CompressionGuidingGate
    from neulens_ros.train.data import SetSpec, render_set
    torch.manual_seed(0)
    gate = CompressionGuidingGate(context=8 if labels == 'kinds' else 0).eval()
    data = render_set(SetSpec(0, 2, (160, 120), (128, 96)), progress=False)
    family = _cgg_family(gate, data, 0.0, labels, None, {0.4: point})
    assert budget_name(0.4) == 'cgg_budget_40' and 'cgg_budget_55' not in family
    assert np.array_equal(family['cgg_budget_40'], gate_levels(gate, data, 3, *point))
    assert not np.array_equal(family['cgg_budget_40'], family['cgg'])  # not the shipped point
    if labels == 'paper':  # a kind rule needs a gate on tile kinds
        with pytest.raises(ConfigError, match='needs a gate on tile kinds'):
            _cgg_family(gate, data, 0.0, labels, None, {0.4: (0.0, OracleRule(0, 3, 3))})


def test_the_plot_marks_the_calibrated_point_and_the_budget_points(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import neulens_ros.eval.detector as detector
    drawn: dict[str, tuple[list, list]] = {}

    def keep_lines(fig, ax, path: Path) -> Path:  # noqa: ANN001
        drawn.update({line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
                      for line in ax.get_lines()})
        return path
    monkeypatch.setattr(detector, 'save_plot', keep_lines)
    results = made_up_results()
    detector.plot_results(results, tmp_path)
    assert drawn['CGG at its calibrated point'] == ([142.0], [0.895])
    assert "CGG at its calibration's budget points" not in drawn  # none in these results
    results['variants'].update({detector.budget_name(0.4): {'macs': 95e6, 'map50': 0.8},
                                detector.budget_name(0.7): {'macs': 160e6, 'map50': 0.9}})
    detector.plot_results(results, tmp_path)
    assert drawn["CGG at its calibration's budget points"] == ([95.0, 160.0], [0.8, 0.9])


def test_the_calibrated_point_is_ringed_and_the_budget_points_starred() -> None:
    from neulens_ros.eval.detector import mark_points
    from neulens_ros.plots import pyplot
    plt = pyplot()
    fig, ax = plt.subplots()
    variants = {'cgg_c0': {'macs': 5e8, 'map50': 0.6},
                'cgg_budget_40': {'macs': 3e8, 'map50': 0.5},
                'cgg_budget_70': {'macs': 7e8, 'map50': 0.65}}
    mark_points(ax, variants, 'cgg_c0', ['cgg_budget_40', 'cgg_budget_70'])
    ring, stars = ax.get_lines()
    assert ring.get_label() == 'CGG at its calibrated point' and ring.get_marker() == 'o'
    assert list(ring.get_xdata()) == [500.0] and list(ring.get_ydata()) == [0.6]
    assert stars.get_marker() == '*' and list(stars.get_xdata()) == [300.0, 700.0]
    ax.clear()
    mark_points(ax, variants, 'cgg_c0', [])  # a gate calibrated before budget points
    assert len(ax.get_lines()) == 1
    plt.close(fig)


def _job(levels: list | None, halo: str = '2', k: int = 3):  # noqa: ANN202
    rows = None if levels is None else np.array([levels] * 2)
    return 'layer2', k, halo, None if rows is None else (lambda i: rows[i])


@pytest.mark.parametrize('a, b, same', [
    (_job(None), _job([0] * 9), True),  # tiled level 0 is uniform level 0
    (_job([0] * 9), _job([0] * 8 + [1]), False),
    (_job([1] * 9), _job([1] * 9, halo='paper'), False),
    (_job([0] * 4, k=2), _job([0] * 9), False),
    ((None, 3, '2', None), (None, 4, 'paper', None), True),  # the untiled model
    ((None, 3, '2', None), _job(None), False),
])
def test_jobs_with_the_same_levels_have_one_key(a, b, same: bool) -> None:  # noqa: ANN001
    from neulens_ros.eval.detector import job_key
    assert (job_key(a, 2) == job_key(b, 2)) is same


def test_run_once_runs_each_key_once_and_copies_the_result() -> None:
    from neulens_ros.eval.detector import run_once
    calls: list[str] = []

    def task(name: str):  # noqa: ANN202
        return lambda: calls.append(name) or {'map50': len(calls)}
    names = ['a', 'b', 'c', 'd']
    results = run_once({n: task(n) for n in names}, {'a': 1, 'b': 2, 'c': 1, 'd': 2},
                       progress=False)
    assert calls == ['a', 'b'] and list(results) == names
    assert results['c'] == results['a'] == {'map50': 1} and results['d'] == {'map50': 2}
    results['c']['extra'] = 1.0  # a copy: the first keeps its record
    assert 'extra' not in results['a']
