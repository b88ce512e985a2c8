"""The compression guiding gate: architecture, tile inputs, outputs, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neulens_ros.errors import BackendError, ConfigError
from neulens_ros.eval.oracle import OracleRule
from neulens_ros.gate.cgg import (GATE_INPUT, CompressionGuidingGate, gate_inputs,
                                  gate_tiles, normalise_tiles, run_gate)
from neulens_ros.gate.runtime import gate_net


def random_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_each_gate_input_is_its_cell_resized(k: int) -> None:
    image = random_image(28 * k * 2, 28 * k * 3, k)  # cells of 56 x 84 pixels
    tiles = gate_inputs(image, k)
    mean = torch.tensor((0.485, 0.456, 0.406)).view(3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(3, 1, 1)
    x = torch.from_numpy(image).permute(2, 0, 1).double()
    for r in range(k):
        for c in range(k):
            cell = x[:, r * 56:(r + 1) * 56, c * 84:(c + 1) * 84]
            box = torch.nn.functional.avg_pool2d(cell[None], (2, 3))[0]  # 2 x 3 blocks
            expected = ((box / 255.0 - mean) / std).float()
            # PIL averages in 8-bit fixed point: within one grey level
            torch.testing.assert_close(tiles[r * k + c], expected, atol=1.0 / 255 / 0.224,
                                       rtol=0)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_gate_shapes_and_confidences(k: int) -> None:
    torch.manual_seed(0)
    gate = CompressionGuidingGate().eval()
    image = random_image(240, 320, 0)
    tiles = gate_inputs(image, k)
    assert tiles.shape == (k * k, 3, GATE_INPUT, GATE_INPUT)
    assert gate(tiles).shape == (k * k, 5)
    out = run_gate(gate_net(gate, 'torch'), image, k)
    assert out.levels.shape == (k * k,) and set(out.levels) <= set(range(5))
    assert ((out.confidences > 0.2) & (out.confidences <= 1.0)).all()  # max of 5 probs


@pytest.mark.parametrize('caution', [-1.0, 0.0, 0.5])
@pytest.mark.parametrize('k', [2, 3, 4])
def test_levels_are_the_cautious_arg_max_and_its_softmax(k: int, caution: float) -> None:
    logits = torch.from_numpy(np.random.default_rng(k).normal(0, 3, (k * k, 5))).float()
    shifted = logits - caution * torch.arange(5)
    out = run_gate(lambda tiles: logits, random_image(96, 128, k), k, caution)
    np.testing.assert_array_equal(out.levels, shifted.argmax(dim=1).numpy())
    np.testing.assert_allclose(out.confidences, torch.softmax(shifted, 1).max(1).values.numpy(),
                               rtol=1e-5)
    if caution > 0:  # caution moves choices down, never up
        assert (out.levels <= logits.argmax(dim=1).numpy()).all()


def test_gate_input_is_the_tile_content() -> None:
    """A tile's gate input depends only on its own cell."""
    image = np.zeros((240, 320, 3), np.uint8)
    image[:120, :160] = 255  # top-left cell of k=2 white
    tiles = gate_inputs(image, 2)
    assert torch.allclose(tiles[0], tiles[0][:, :1, :1].expand_as(tiles[0]))
    assert not torch.allclose(tiles[0], tiles[3])
    assert torch.allclose(tiles[1], tiles[3])


@pytest.mark.parametrize('context', [0, 16])
@pytest.mark.parametrize('k', [2, 3, 4])
def test_onnxruntime_gate_is_the_same_function(k: int, context: int) -> None:
    torch.manual_seed(k)
    gate = CompressionGuidingGate(context=context).eval()
    tiles = gate_tiles(random_image(192, 256, k), k)  # 8-bit: both nets normalise them
    with torch.inference_mode():
        expected = gate(normalise_tiles(tiles))
        assert torch.equal(gate_net(gate, 'torch')(tiles), expected)
    got = gate_net(gate, 'onnxruntime')(tiles)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_gate_parameter_count_matches_the_paper_layout() -> None:
    gate = CompressionGuidingGate()
    assert sum(p.numel() for p in gate.parameters()) == 3 * 64 * 49 + 64 + 64 * 9 * 5 + 5


@pytest.mark.parametrize('k', [2, 3, 4])
@pytest.mark.parametrize('row, col', [(0, 0), (0, 1), (1, 0)])
def test_context_gate_sees_the_neighbours_and_only_them(k: int, row: int, col: int) -> None:
    """Changing tile (row, col) changes the logits of its grid neighbours under a gate with
    context, of no other tile, and of no other tile under the paper's gate (off-diagonal
    tiles catch a transposed grid)."""
    torch.manual_seed(k)
    tiles = gate_inputs(random_image(192, 256, k), k)
    changed = tiles.clone()
    changed[row * k + col] = -changed[row * k + col]
    neighbours = {r * k + c for r in range(max(0, row - 1), min(k, row + 2))
                  for c in range(max(0, col - 1), min(k, col + 2))}
    for context in (0, 16):
        gate = CompressionGuidingGate(context=context).eval()
        with torch.inference_mode():
            moved = (gate(tiles) - gate(changed)).abs().amax(1) > 1e-6  # [T]
        expected = neighbours if context else {row * k + col}
        assert set(np.flatnonzero(moved.numpy()).tolist()) == expected


@pytest.mark.parametrize('context', [0, 16])
def test_frames_are_the_gate_on_each_frame(context: int) -> None:
    torch.manual_seed(0)
    gate = CompressionGuidingGate(context=context).eval()
    frames = torch.stack([gate_inputs(random_image(192, 256, s), 3) for s in range(3)])
    with torch.inference_mode():
        together = gate.frames(frames)
        alone = torch.stack([gate(f) for f in frames])
    assert together.shape == (3, 9, 5)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_context_gate_adds_a_small_grid_stage() -> None:
    paper, context = CompressionGuidingGate(), CompressionGuidingGate(context=64)
    shared = 3 * 64 * 49 + 64
    assert sum(p.numel() for p in context.parameters()) == \
        shared + (576 * 64 + 64) + (64 * 64 * 9 + 64) + (128 * 5 + 5)
    assert sum(p.numel() for p in paper.parameters()) == shared + 576 * 5 + 5


@pytest.mark.parametrize('call', [
    lambda: CompressionGuidingGate(context=-1),
    lambda: CompressionGuidingGate(context=8)(torch.zeros(5, 3, 28, 28)),
    lambda: gate_inputs(np.zeros((10, 10, 3), np.uint8), 0),
    lambda: gate_inputs(np.zeros((3, 10, 3), np.uint8), 4),
    lambda: gate_inputs(np.zeros((240, 320), np.uint8), 2),
    lambda: gate_inputs(np.zeros((240, 320, 3), np.float32), 2),
    lambda: CompressionGuidingGate(num_levels=1),
])
def test_gate_validation(call) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError):
        call()


@pytest.mark.parametrize('call', [
    lambda: gate_net(CompressionGuidingGate(), 'tensorrt'),
    lambda: gate_net(CompressionGuidingGate(), 'onnxruntime', ks=(2,))(torch.zeros(9, 3, 28,
                                                                                 28)),
    lambda: gate_net(CompressionGuidingGate(), 'onnxruntime')(torch.zeros(5, 3, 28, 28)),
    lambda: gate_net(CompressionGuidingGate(), 'onnxruntime', ks=(2,))(  # normalised floats
        torch.zeros(4, 3, 28, 28)),
])
def test_gate_backend_validation(call) -> None:  # noqa: ANN001
    with pytest.raises(BackendError):
        call()


def test_gate_eval_needs_labels(tmp_path, capsys) -> None:
    from neulens_ros.tools.eval_gate import main as eval_gate
    assert eval_gate(['--work', str(tmp_path)]) == 2
    assert 'neulens-train --detector' in capsys.readouterr().err


@pytest.mark.parametrize('shares', ['0', '1.5', ',', '-0.5,1'])
def test_gate_eval_rejects_shares_outside_0_1(shares: str) -> None:
    from neulens_ros.tools.eval_gate import main as eval_gate
    with pytest.raises(SystemExit):
        eval_gate(['--fractions', shares])


def test_gate_eval_needs_a_probe_epoch(tmp_path) -> None:
    from neulens_ros.tools.eval_gate import main as eval_gate
    with pytest.raises(SystemExit):
        eval_gate(['--work', str(tmp_path), '--probe-epochs', '0'])


def test_capacity_probe_scores_gate_inputs() -> None:
    from neulens_ros.tools.eval_gate import parameters, probe_network
    probe = probe_network().eval()
    assert probe(torch.zeros(7, 3, 28, 28)).shape == (7, 5)
    assert parameters(probe) > 40 * parameters(CompressionGuidingGate())


class _Images:
    def __init__(self, count: int) -> None:
        self.images = np.stack([random_image(96, 128, i) for i in range(count)])


def _gate_preferring_level0() -> CompressionGuidingGate:
    """A gate whose logits favour level 0 by 0.3 a level on any input."""
    gate = CompressionGuidingGate().eval()
    with torch.no_grad():
        gate.conv.weight.zero_()
        gate.fc.weight.zero_()
        gate.fc.bias.copy_(-0.3 * torch.arange(5, dtype=torch.float32))
    return gate


def _front_cost_evaluate(loss_per_skipped: float):
    """mAP falls `loss_per_skipped` per skipped tile share; MACs are the front's level cost."""
    cost = np.array([1.0, 0.6, 0.3, 0.1, 0.0])

    def evaluate(data: _Images, levels) -> dict:
        rows = np.stack([levels(i) for i in range(len(data.images))]) if levels else \
            np.zeros((len(data.images), 9), np.int64)
        return {'map50': 0.8 - loss_per_skipped * float((rows == 4).mean()),
                'macs': float(cost[rows].mean())}
    return evaluate


def test_calibration_compresses_past_the_trained_gate_when_accuracy_allows() -> None:
    from neulens_ros.gate.calibration import calibrate_caution
    # at caution 0 every tile stays at level 0; only a negative caution compresses
    result = calibrate_caution(_gate_preferring_level0(), {'scenes': _Images(3)}, 3,
                               _front_cost_evaluate(0.0))
    assert result['within_budget'] and result['caution'] < 0
    chosen = next(s for s in result['sweep'] if s['caution'] == result['caution'])
    assert chosen['macs'] == min(s['macs'] for s in result['sweep'])
    at_zero = next(s for s in result['sweep'] if s['caution'] == 0.0)
    assert chosen['macs'] < at_zero['macs'] == 1.0


def test_calibration_keeps_the_loss_within_the_limit() -> None:
    from neulens_ros.gate.calibration import calibrate_caution
    # skipping every tile costs 50 points: only cautions that skip nothing are allowed
    result = calibrate_caution(_gate_preferring_level0(), {'scenes': _Images(3)}, 3,
                               _front_cost_evaluate(0.5), max_loss_points=1.0)
    chosen = next(s for s in result['sweep'] if s['caution'] == result['caution'])
    assert chosen['loss_points'] <= 1.0
    assert any(s['loss_points'] > 1.0 and s['macs'] < chosen['macs'] for s in result['sweep'])
    assert result['kind_rule'] is None and all(s['kind_rule'] is None for s in result['sweep'])


def test_a_kinds_gate_is_calibrated_on_caution_and_rule_pairs() -> None:
    from neulens_ros.eval.oracle import ORACLE_FAMILY
    from neulens_ros.gate.calibration import calibrate_caution
    cost = np.array([1.0, 0.6, 0.3, 0.1, 0.0])

    def evaluate(data: _Images, levels) -> dict:
        """mAP falls by 0.5 over the share of tiles narrower than level 1."""
        rows = np.stack([levels(i) for i in range(len(data.images))]) if levels else \
            np.zeros((len(data.images), 9), np.int64)
        return {'map50': 0.8 - 0.5 * float((rows >= 2).mean()),
                'macs': float(cost[rows].mean())}
    # at cautions 0 and 1 the gate calls every tile a centre (level 0): the rules that keep
    # centres at level 0 or 1 stay within 1 point, and centres at level 1 are the cheapest
    result = calibrate_caution(_gate_preferring_level0(), {'scenes': _Images(3)}, 3, evaluate,
                               cautions=(0.0, 1.0), rules=ORACLE_FAMILY)
    assert len(result['sweep']) == 2 * len(ORACLE_FAMILY)
    assert {tuple(s['kind_rule']) for s in result['sweep']} == {
        (r.centre, r.touched, r.empty) for r in ORACLE_FAMILY}
    assert result['kind_rule'] == [1, 3, 4] and result['within_budget']
    chosen = next(s for s in result['sweep'] if s['kind_rule'] == result['kind_rule']
                  and s['caution'] == result['caution'])
    assert chosen['macs'] == pytest.approx(0.6) and chosen['loss_points'] == 0.0


def test_a_calibrated_point_holds_on_every_part_not_only_on_their_mean() -> None:
    from neulens_ros.gate.calibration import calibrate_caution
    cost = np.array([1.0, 0.6, 0.3, 0.1, 0.0])

    def evaluate(data: _Images, levels) -> dict:
        """Skipped tiles cost 0.3 points per skipped share on 'scenes' and 30 on 'walks'."""
        rows = np.stack([levels(i) for i in range(len(data.images))]) if levels else \
            np.zeros((len(data.images), 9), np.int64)
        return {'map50': 0.8 - data.loss * float((rows == 4).mean()),
                'macs': float(cost[rows].mean())}
    scenes, walks = _Images(3), _Images(2)
    scenes.loss, walks.loss = 0.003, 0.3
    alone = calibrate_caution(_gate_preferring_level0(), {'scenes': scenes}, 3, evaluate)
    both = calibrate_caution(_gate_preferring_level0(), {'scenes': scenes, 'walks': walks}, 3,
                             evaluate)
    chosen = next(s for s in both['sweep'] if s['caution'] == both['caution'])
    # the scenes alone allow skipping everything; the walks do not, and their bound holds
    assert both['caution'] > alone['caution'] and both['within_budget']
    assert chosen['parts']['walks']['loss_points'] <= 1.0 < max(
        s['parts']['walks']['loss_points'] for s in both['sweep'])
    # the recorded mAP and MACs are the parts' means, the loss their worst
    assert chosen['map50'] == pytest.approx(np.mean([p['map50']
                                                     for p in chosen['parts'].values()]))
    assert chosen['loss_points'] == max(p['loss_points'] for p in chosen['parts'].values())
    assert both['references'] == {'scenes': {'map50': 0.8, 'macs': 1.0},
                                  'walks': {'map50': 0.8, 'macs': 1.0}}


def test_a_calibration_without_images_is_refused() -> None:
    from neulens_ros.gate.calibration import calibrate_caution
    with pytest.raises(ConfigError, match='at least one part'):
        calibrate_caution(_gate_preferring_level0(), {}, 3, _front_cost_evaluate(0.0))


def _sweep(*points: tuple[float, list[int] | None, float, float]) -> dict:
    """A calibration of (caution, kind rule, mAP@0.5, MACs) points, level 0 at 100 MACs."""
    return {'reference_macs': 100.0, 'sweep': [
        {'caution': c, 'kind_rule': r, 'map50': m, 'macs': macs} for c, r, m, macs in points]}


def test_each_budget_gets_the_most_accurate_calibrated_point_it_affords() -> None:
    from neulens_ros.gate.calibration import budget_points
    calibration = _sweep((-0.5, [1, 3, 4], 0.60, 38.0), (0.0, [0, 3, 4], 0.66, 40.0),
                         (0.0, [0, 3, 3], 0.66, 39.0),  # as accurate and cheaper
                         (0.5, [0, 1, 3], 0.70, 56.0), (1.0, [0, 0, 3], 0.71, 69.0))
    chosen = budget_points(calibration, 'kinds')
    assert chosen == {0.4: (0.0, OracleRule(0, 3, 3)), 0.55: (0.0, OracleRule(0, 3, 3)),
                      0.7: (1.0, OracleRule(0, 0, 3))}
    # no point fits a 30% budget; a paper gate's points have no rule
    paper = _sweep((-0.2, None, 0.5, 45.0), (0.3, None, 0.6, 70.0))
    assert budget_points(paper, 'paper', (0.3, 0.55, 0.7)) == {0.55: (-0.2, None),
                                                               0.7: (0.3, None)}
    assert budget_points({'caution': 0.1}, 'paper') == {}  # made before sweeps were kept


@pytest.mark.parametrize('calibration, message', [
    ({'sweep': [{'caution': 0.0, 'kind_rule': None, 'map50': 0.5, 'macs': 1.0}]},
     'positive reference_macs'),
    ({**_sweep((0.0, None, 0.5, 40.0)), 'reference_macs': 0.0}, 'positive reference_macs'),
    ({**_sweep((0.0, None, 0.5, 40.0)), 'reference_macs': float('nan')},
     'positive reference_macs'),
    ({**_sweep((0.0, None, 0.5, 40.0)), 'reference_macs': True}, 'positive reference_macs'),
    (_sweep((0.0, [0, 3], 0.5, 40.0)), 'three integer levels'),
    (_sweep((0.0, [0, 3, 3], float('nan'), 40.0)), 'needs numbers caution, map50'),
    (_sweep((0.0, [0, 3, 3], 0.5, -1.0)), 'positive macs'),
    ({'reference_macs': 100.0, 'sweep': [{'caution': 0.0, 'kind_rule': None}]},
     'positive macs'),
])
def test_a_broken_calibration_is_refused(calibration: dict, message: str) -> None:
    from neulens_ros.gate.calibration import budget_points
    with pytest.raises(ConfigError, match=message):
        budget_points(calibration, 'kinds')


def test_a_paper_gates_calibration_with_a_kind_rule_is_refused() -> None:
    from neulens_ros.gate.calibration import budget_points
    with pytest.raises(ConfigError, match='needs a gate on tile kinds'):
        budget_points(_sweep((0.0, [0, 3, 3], 0.5, 40.0)), 'paper')


@pytest.mark.parametrize('calibration, halo, made_with', [
    ({'halo': '2'}, '2', None), ({}, '2', None),  # matching; no calibration shipped
    ({'caution': 0.1}, 'paper', None),  # a calibration that records no halo ran the paper's
    ({'caution': 0.1}, '2', 'paper'), ({'halo': '2'}, 'paper', '2'),
    ({'halo': 'paper'}, '2', 'paper')])
def test_a_gate_calibrated_at_another_halo_is_named(calibration: dict, halo: str,
                                                     made_with: str | None) -> None:
    from neulens_ros.gate.calibration import halo_warning
    warning = halo_warning({'calibration': calibration}, halo)
    assert (warning is None) == (made_with is None)
    if made_with:
        assert f'{made_with!r} halo' in warning and f'runs them with {halo!r}' in warning


@pytest.mark.parametrize('name, halo, warned', [
    ('neulens_cgg_hard', '2', False), ('neulens_cgg_hard', 'paper', True),
    ('neulens_cgg', 'paper', False), ('neulens_cgg_hard_paper', '4', True)])
def test_a_gates_shipped_points_are_read_for_a_detectors_halo(name: str, halo: str,
                                                              warned: bool) -> None:
    from neulens_ros.gate.calibration import checkpoint_budget_points, shipped_points
    from neulens_ros.gate.kind_labels import gate_operating_point
    from neulens_ros.models.zoo import load_gate
    _, meta = load_gate(name)
    points = shipped_points(meta, halo)
    assert points.point == gate_operating_point(meta)
    assert points.budget == checkpoint_budget_points(meta)
    assert points.labels == meta.get('labels', 'paper')
    assert (points.warning is not None) == warned


@pytest.mark.parametrize('meta, message', [
    ({'labels': 'kinds', 'kind_rule': [0, 9, 3]}, 'levels must be in'),
    ({'labels': 'kinds', 'kind_rule': [0, 1]}, 'three integer levels'),
    ({'labels': 'kinds', 'calibration': {'sweep': [{'caution': 0.0}]}}, 'reference_macs')])
def test_unreadable_shipped_points_are_refused(meta: dict, message: str) -> None:
    from neulens_ros.gate.calibration import shipped_points
    with pytest.raises(ConfigError, match=message):
        shipped_points(meta, '2')


def test_a_paper_gates_sweep_without_kind_rules_gives_its_budget_points() -> None:
    from neulens_ros.gate.calibration import budget_points
    calibration = _sweep((0.0, None, 0.60, 38.0), (0.5, None, 0.70, 56.0))
    for point in calibration['sweep']:
        del point['kind_rule']  # a paper gate's calibration records none
    assert budget_points(calibration, 'paper') == {0.4: (0.0, None), 0.55: (0.0, None),
                                                   0.7: (0.5, None)}
