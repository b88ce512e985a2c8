"""The stream evaluation (eval/stream.py, neulens-eval stream) on two short walks of tiny
frames with randomly initialised modules: the closed loop feeds each frame's prior from the
same variant's detections of the previous frame, and the command writes its report."""

import json

import numpy as np
import pytest
import torch

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.eval.detector import SHIP_HALO, SHIP_K, SHIP_P, run_variant
from neulens_ros.eval.stream import (PriorLoop, evaluate_stream, run_loop, shipped_grid,
                                     walk_order)
from neulens_ros.gate.calibration import gate_levels
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.gate.prior import PriorConfig, apply_prior
from neulens_ros.gate.tile_kinds import owned_blocks
from neulens_ros.supernet.centernet import decode
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, normalise
from neulens_ros.supernet.macs import MacTable
from neulens_ros.train.data import SetSpec, render_set
from neulens_ros.train.plan import WALK_SEEDS, held_out_walks

WALKS, FRAMES = 2, 4
SIZE = (64, 64)  # tiny detector input
RENDER = (64, 48)
PRIOR = PriorConfig(margin_px=2, score_threshold=0.8)
NARROW = 3  # the test gate's level for every tile at caution 0


@pytest.fixture(scope='module')
def model() -> TileDetector:
    """A random detector whose heatmap varies enough with the content that only a few peaks
    per frame, in different tiles from frame to frame, reach the prior's threshold."""
    torch.manual_seed(0)
    config = DetectorConfig(num_classes=12, input_width=SIZE[0], input_height=SIZE[1],
                            widths=(8, 8, 8, 8, 8), neck_width=8)
    model = TileDetector(config).eval()
    with torch.no_grad():
        model.heatmap.weight.mul_(300.0)
        model.heatmap.bias.fill_(-8.0)
    return model


@pytest.fixture(scope='module')
def gate() -> CompressionGuidingGate:
    """A gate that puts every tile at level NARROW at caution 0 (the prior lowers some)."""
    gate = CompressionGuidingGate().eval()
    with torch.no_grad():
        gate.fc.weight.zero_()
        gate.fc.bias.copy_(torch.nn.functional.one_hot(torch.tensor(NARROW), 5) * 3.0)
    return gate


@pytest.fixture(scope='module')
def walks():
    return render_set(held_out_walks(WALKS, FRAMES, SIZE, render=RENDER), progress=False)


def test_walk_sets_hold_the_frames_of_each_walk_in_order(walks) -> None:
    assert len(walks) == WALKS * FRAMES and walks.images.shape[1:] == (64, 64, 3)
    spec = held_out_walks(WALKS, FRAMES, SIZE, render=RENDER)
    assert spec.first_seed == WALK_SEEDS[0] and spec.preset == 'hard'
    assert spec.key() != SetSpec(spec.first_seed, WALKS, RENDER, SIZE, preset='hard').key()
    # consecutive frames of a walk are closer than the first frames of two walks
    step = np.abs(walks.images[1].astype(int) - walks.images[0]).mean()
    across = np.abs(walks.images[FRAMES].astype(int) - walks.images[0]).mean()
    assert step < across


def test_walk_order_runs_frame_t_of_every_walk_together() -> None:
    assert walk_order(6, 3) == [[0, 3], [1, 4], [2, 5]]
    with pytest.raises(DataError, match='no whole number of walks'):
        walk_order(7, 3)


def test_run_variant_needs_every_frame_once(model, walks) -> None:
    with pytest.raises(DataError, match='every image of the set once'):
        run_variant(model, walks, SHIP_P, SHIP_K, SHIP_HALO, None, MacTable(model),
                    order=[[0, 1], [1, 2]])


def test_the_loop_refuses_a_frame_before_its_predecessor(model, walks, gate) -> None:
    loop = PriorLoop(gate_levels(gate, walks, SHIP_K, 0.0), FRAMES,
                     owned_blocks(shipped_grid(model)), PRIOR)
    with pytest.raises(DataError, match='frame 1 runs before the detections of frame 0'):
        run_variant(model, walks, SHIP_P, SHIP_K, SHIP_HALO, loop, MacTable(model),
                    order=[list(range(len(walks)))])


def test_the_closed_loop_feeds_the_previous_frames_detections(model, walks, gate) -> None:
    owned = owned_blocks(shipped_grid(model))
    paper = gate_levels(gate, walks, SHIP_K, 0.0)
    assert (paper == NARROW).all()
    loop = PriorLoop(paper, FRAMES, owned, PRIOR)
    result = run_loop(model, walks, loop, MacTable(model))
    assert set(result) >= {'map50', 'macs'}
    executor = MicroFlowExecutor(model, SHIP_P)
    for i in range(len(walks)):
        x = normalise(torch.from_numpy(walks.images[i:i + 1].copy()).permute(0, 3, 1, 2))
        with torch.no_grad():
            out = executor(x, loop.levels[i:i + 1], SHIP_K, SHIP_HALO)
        det = decode(out, model.config.output_stride, score_threshold=0.05)[0]
        np.testing.assert_allclose(det.boxes, loop.detections[i].boxes, atol=1e-4)
        if i % FRAMES == 0:  # the first frame of a walk: the gate alone
            np.testing.assert_array_equal(loop.levels[i], paper[i])
        else:  # the prior of this variant's own detections of frame i - 1
            previous = loop.detections[i - 1]
            np.testing.assert_array_equal(
                loop.levels[i], apply_prior(paper[i], previous.boxes, previous.scores, owned,
                                            PRIOR))
    later = [i for i in range(len(walks)) if i % FRAMES]
    assert (loop.levels[later] < NARROW).any()  # the prior lowered some tiles
    # and which frame fed it matters: frame i - 2's detections would give other levels
    other = [apply_prior(paper[i], loop.detections[i - 2].boxes, loop.detections[i - 2].scores,
                         owned, PRIOR) for i in later if i % FRAMES > 1]
    assert any((o != loop.levels[i]).any()
               for o, i in zip(other, [i for i in later if i % FRAMES > 1], strict=True))


def test_evaluate_stream_runs_every_family_side_by_side(model, walks, gate) -> None:
    results, loops = evaluate_stream(model, gate, walks, FRAMES, PRIOR, 0.0, (2.0,),
                                     label_frames=2, progress=False)
    families, variants = results['families'], results['variants']
    assert families['cgg'] == ['cgg_c0', 'cgg_c2']
    assert families['cgg_prior'] == ['cgg_prior_c0', 'cgg_prior_c2'] == list(loops)
    assert all(name in variants for names in families.values() for name in names)
    # the paper gate keeps every tile at level 3 at caution 0; the prior widens some
    assert variants['cgg_c0']['level_histogram'] == [0, 0, 0, WALKS * FRAMES * 9, 0]
    assert variants['cgg_prior_c0']['macs'] > variants['cgg_c0']['macs']
    agreement = results['agreement']
    assert agreement['frames'] == [0, WALKS * FRAMES - 1]
    assert set(agreement['variants']) == set(families['cgg']) | set(families['cgg_prior'])
    rows = results['budgets']
    assert [r['fraction'] for r in rows] == [0.4, 0.55, 0.7]
    assert all('prior_map50' in r and 'prior_captured' in r for r in rows)


def test_the_command_reports_each_seed_range(tmp_path, model, gate, capsys) -> None:
    from neulens_ros.models.registry import save_checkpoint
    from neulens_ros.tools.eval import COMMANDS, main
    from neulens_ros.train.pipeline import architecture
    assert COMMANDS['stream'] == 'neulens_ros.tools.eval_stream'
    detector = save_checkpoint(tmp_path / 'd.pt', model, 'detector',
                               architecture(model.config, 'hard'))
    assert detector['architecture']['preset'] == 'hard'
    sweep = [{'caution': c, 'kind_rule': None, 'map50': m, 'macs': macs}
             for c, m, macs in [(-1.0, 0.4, 50.0), (0.0, 0.5, 69.0), (0.5, 0.6, 90.0)]]
    save_checkpoint(tmp_path / 'g.pt', gate, 'gate', {'num_levels': 5, 'channels': 64},
                    caution=0.5, calibration={'caution': 0.5, 'reference_macs': 100.0,
                                              'sweep': sweep})
    out = tmp_path / 'out'
    assert main(['stream', '--detector', str(tmp_path / 'd.pt'), '--gate',
                 str(tmp_path / 'g.pt'), '--walks', '2', '--frames', '3', '--second-walks', '1',
                 '--render', '64x48', '--cautions', '2', '--label-frames', '2', '--margin', '4',
                 '--out', str(out), '--quiet']) == 0
    report = json.loads((out / 'eval_stream.json').read_text())
    assert report['prior']['margin_px'] == 4 and report['gate_caution'] == 0.5
    assert list(report['ranges']) == [str(s) for s in WALK_SEEDS]
    first, second = (report['ranges'][str(s)] for s in WALK_SEEDS)
    assert first['headline']['walks'] == 2 and second['headline']['walks'] == 1
    # the calibration's budget points: -1 fits 55% of level 0's MACs, 0 fits 70%
    assert first['headline']['gate_budget_points'] == {
        'cgg_budget_55': {'caution': -1.0, 'kind_rule': None},
        'cgg_budget_70': {'caution': 0.0, 'kind_rule': None}}
    assert first['families']['cgg_prior'] == ['cgg_prior_c0.5', 'cgg_prior_c2',
                                              'cgg_prior_budget_55', 'cgg_prior_budget_70']
    assert all((out / f'map_vs_macs_{s}.png').is_file() for s in WALK_SEEDS)
    cost = report['gate_ms_per_frame']
    assert set(cost) == {'k2', 'k3', 'k4'}
    assert set(cost['k4']) == {'onnxruntime', 'inputs', 'onnxruntime_with_prior'}
    text = capsys.readouterr().out
    assert 'prior capt.' in text and 'cgg_prior_c2' in text and 'with the prior' in text


def test_the_command_refuses_an_easy_detector(tmp_path, model, gate, capsys) -> None:
    from neulens_ros.models.registry import save_checkpoint
    from neulens_ros.tools.eval_stream import main
    from neulens_ros.train.pipeline import architecture
    save_checkpoint(tmp_path / 'd.pt', model, 'detector', architecture(model.config, 'easy'))
    with pytest.raises(SystemExit):
        main(['--detector', str(tmp_path / 'd.pt'), '--gate', 'unused', '--quiet'])
    assert "trained on the 'easy' preset" in capsys.readouterr().err


@pytest.mark.parametrize('args', [['--walks', '0'], ['--frames', '1'], ['--margin', '-1'],
                                  ['--touched-level', '7'], ['--render', '64'],
                                  ['--cautions', 'a']])
def test_bad_arguments_are_usage_errors(args: list, capsys) -> None:
    from neulens_ros.tools.eval_stream import main
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


@pytest.mark.parametrize('option, seed', [('--first-seed', '800000'),
                                          ('--second-seed', '999999')])
def test_walks_below_the_held_out_seeds_are_refused(option: str, seed: str, capsys) -> None:
    from neulens_ros.tools.eval_stream import main
    with pytest.raises(SystemExit) as exc:
        main([option, seed])
    assert exc.value.code == 2
    assert '--first-seed and --second-seed must be at least 1000000' in capsys.readouterr().err


def test_a_kinds_gate_has_the_oracle_rules_on_its_kinds_in_the_cgg_family(model, walks,
                                                                          gate) -> None:
    from neulens_ros.eval.detector import kinds_name
    from neulens_ros.eval.oracle import ORACLE_FAMILY
    from neulens_ros.eval.stream import prior_name
    results, loops = evaluate_stream(model, gate, walks, FRAMES, PRIOR, 0.0, (),
                                     label_frames=1, progress=False, gate_labels='kinds')
    rules = [kinds_name(rule.name) for rule in ORACLE_FAMILY]
    assert results['families']['cgg'] == ['cgg_c0', *rules]
    # each rule on the gate's kinds also runs in the prior's closed loop
    with_prior = [prior_name(name) for name in rules]
    assert with_prior[0] == 'cgg_prior_kinds_' + rules[0].removeprefix('cgg_kinds_')
    assert results['families']['cgg_prior'] == ['cgg_prior_c0', *with_prior] == list(loops)
    widened = 0
    for name, looped in zip(rules, with_prior, strict=True):
        open_loop = loops[looped].gate  # the rule's levels, before the prior
        assert (loops[looped].levels <= open_loop).all()  # the prior only widens
        widened += int((loops[looped].levels < open_loop).sum())
        assert results['variants'][looped]['macs'] >= results['variants'][name]['macs']
    assert widened > 0  # and it did, on some frames after the first of a walk
    assert results['headline']['gate_labels'] == 'kinds'
    # this gate keeps every tile at level 3: the kinds it chose are all 'touched'
    for rule in ORACLE_FAMILY:
        histogram = results['variants'][kinds_name(rule.name)]['level_histogram']
        assert histogram[rule.touched] == WALKS * FRAMES * 9, rule
    assert set(rules) <= set(results['agreement']['variants'])


def test_a_calibrated_kind_rule_runs_in_every_stream_variant_but_the_kinds_rules(
        model, walks) -> None:
    from neulens_ros.eval.oracle import OracleRule
    from neulens_ros.eval.stream import gate_cost
    from neulens_ros.gate.cgg import CompressionGuidingGate
    gate = CompressionGuidingGate().eval()  # a gate that calls every tile a centre (level 0)
    with torch.no_grad():
        gate.conv.weight.zero_()
        gate.fc.weight.zero_()
        gate.fc.bias.copy_(-torch.arange(5, dtype=torch.float32))
    rule = OracleRule(1, 3, NARROW + 1)
    results, loops = evaluate_stream(model, gate, walks, FRAMES, PRIOR, 0.0, (), progress=False,
                                     gate_labels='kinds', rule=rule)
    tiles = WALKS * FRAMES * 9
    assert results['variants']['cgg_c0']['level_histogram'] == [0, tiles, 0, 0, 0]
    assert results['headline']['gate_kind_rule'] == '1_3_skip'
    assert (loops['cgg_prior_c0'].gate == 1).all()  # the prior caps the rule's levels
    # the kinds rules level the gate's own kinds: every tile a centre, at each rule's level
    assert results['variants']['cgg_kinds_0_3_skip']['level_histogram'] == [tiles, 0, 0, 0, 0]
    assert (loops['cgg_prior_kinds_2_3_skip'].gate == 2).all()
    previous = [loops['cgg_prior_c0'].detections[0]]
    cost = gate_cost(gate, model, [walks.images[0]], previous, 0.0, PRIOR, '2', rule)
    assert set(cost['k3']) == {'onnxruntime', 'inputs', 'onnxruntime_with_prior'}
    with pytest.raises(ConfigError, match='needs a gate on tile kinds'):
        evaluate_stream(model, gate, walks, FRAMES, PRIOR, 0.0, (), progress=False, rule=rule)


def test_evaluate_stream_refuses_unknown_gate_labels(model, walks, gate) -> None:
    from neulens_ros.errors import ConfigError
    with pytest.raises(ConfigError, match="gate labels 'boxes' are not one of"):
        evaluate_stream(model, gate, walks, FRAMES, PRIOR, 0.0, (), gate_labels='boxes')


def test_the_budget_points_run_alone_and_in_the_priors_loop(model, walks, gate) -> None:
    results, loops = evaluate_stream(model, gate, walks, FRAMES, PRIOR, 0.0, (),
                                     progress=False, budget={0.4: (2.0, None)})
    assert results['families']['cgg'] == ['cgg_c0', 'cgg_budget_40']
    assert results['families']['cgg_prior'] == ['cgg_prior_c0', 'cgg_prior_budget_40']
    budget = gate_levels(gate, walks, SHIP_K, 2.0)
    assert not np.array_equal(budget, gate_levels(gate, walks, SHIP_K, 0.0))
    assert np.array_equal(loops['cgg_prior_budget_40'].gate, budget)
    assert results['variants']['cgg_budget_40']['level_histogram'] == np.bincount(
        budget.ravel(), minlength=5).tolist()
    assert results['headline']['gate_budget_points'] == {
        'cgg_budget_40': {'caution': 2.0, 'kind_rule': None}}


def test_a_gate_with_a_broken_calibration_is_a_usage_error(tmp_path, model, gate,
                                                           capsys) -> None:
    from neulens_ros.models.registry import save_checkpoint
    from neulens_ros.tools.eval_stream import main
    from neulens_ros.train.pipeline import architecture
    save_checkpoint(tmp_path / 'd.pt', model, 'detector', architecture(model.config, 'hard'))
    save_checkpoint(tmp_path / 'g.pt', gate, 'gate', {'num_levels': 5, 'channels': 64},
                    caution=0.0, calibration={'reference_macs': 0.0, 'sweep': [
                        {'caution': 0.0, 'kind_rule': None, 'map50': 0.5, 'macs': 1.0}]})
    with pytest.raises(SystemExit) as exc:
        main(['--detector', str(tmp_path / 'd.pt'), '--gate', str(tmp_path / 'g.pt'),
              '--out', str(tmp_path / 'out'), '--quiet'])
    assert exc.value.code == 2 and 'positive reference_macs' in capsys.readouterr().err


def test_a_budget_point_equal_to_the_shipped_point_runs_once(model, walks, gate,
                                                             monkeypatch) -> None:
    import neulens_ros.eval.stream as stream
    runs: list[str] = []

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        runs.append('loop' if 'observe' in kwargs else 'open')
        return run_variant(*args, **kwargs)
    monkeypatch.setattr(stream, 'run_variant', counted)
    results, loops = evaluate_stream(model, gate, walks, FRAMES, PRIOR, 0.0, (),
                                     progress=False, budget={0.4: (0.0, None)})
    variants = results['variants']
    assert loops['cgg_prior_budget_40'] is loops['cgg_prior_c0']  # one closed loop
    assert variants['cgg_prior_budget_40'] == variants['cgg_prior_c0']
    assert variants['cgg_budget_40'] == variants['cgg_c0']
    assert variants['cgg_budget_40'] is not variants['cgg_c0']  # copies, not one record
    assert runs.count('loop') == 1
    # this gate puts every tile at NARROW: cgg_c0 is uniform_3, and so is the budget point
    assert variants[f'uniform_{NARROW}'].items() <= variants['cgg_c0'].items()
    assert runs.count('open') == len(variants) - len(loops) - 2
