"""The plans of neulens-train: what each preset's gate learns, and their validation."""

from dataclasses import replace

import pytest

from neulens_ros.errors import ConfigError
from neulens_ros.train.plan import (FULL, FULL_HARD, GATE_CONTEXT, GATE_LABELS, SMOKE,
                                    plan_for, with_gate_labels)


def test_each_preset_has_its_gate() -> None:
    assert plan_for('hard', False).gate_labels == 'kinds'
    assert plan_for('hard', False).gate_context == GATE_CONTEXT['kinds'] > 0
    assert (plan_for('easy', False).gate_labels, plan_for('easy', False).gate_context) == \
        ('paper', 0)
    assert plan_for('hard', True) is SMOKE and SMOKE.gate_labels == 'paper'


@pytest.mark.parametrize('plan', [FULL, FULL_HARD, SMOKE])
@pytest.mark.parametrize('labels', GATE_LABELS)
def test_gate_labels_bring_their_context(plan, labels: str) -> None:  # noqa: ANN001
    changed = with_gate_labels(plan, labels)
    assert (changed.gate_labels, changed.gate_context) == (labels, GATE_CONTEXT[labels])
    assert replace(changed, gate_labels=plan.gate_labels) == plan


@pytest.mark.parametrize('call', [
    lambda: with_gate_labels(FULL, 'boxes'),
    lambda: replace(FULL, gate_labels='boxes'),
])
def test_gate_plan_is_validated(call) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match='gate'):
        call()


@pytest.mark.parametrize('untiled', [-1, FULL.supernet_steps + 1])
def test_the_untiled_warm_up_fits_in_the_supernet_steps(untiled: int) -> None:
    with pytest.raises(ConfigError, match='warm-up'):
        replace(FULL, untiled_steps=untiled)
    assert replace(FULL, untiled_steps=FULL.supernet_steps).untiled_steps == FULL.supernet_steps


def test_a_calibration_is_read_for_the_gate_it_calibrated() -> None:
    from neulens_ros.eval.oracle import OracleRule
    from neulens_ros.train.pipeline import calibrated_point
    kinds = {'caution': 1.0, 'kind_rule': [1, 3, 4], 'labels': 'kinds'}
    assert calibrated_point({}, 'paper') == (0.0, None)
    assert calibrated_point(kinds, 'kinds') == (1.0, OracleRule(1, 3, 4))
    assert calibrated_point({'caution': -0.1}, 'paper') == (-0.1, None)  # before 'labels'
    with pytest.raises(ConfigError, match='run the calibrate stage again'):
        calibrated_point(kinds, 'paper')


def test_the_hard_plan_runs_its_tiles_with_its_halo() -> None:
    assert (FULL.halo, SMOKE.halo, FULL_HARD.halo) == ('paper', 'paper', '2')
    assert replace(FULL, halo='8').halo == '8'
    assert replace(FULL, halo='08').halo == '8'  # pixels written plainly, as metadata is


@pytest.mark.parametrize('halo', ['wide', '-1', '1.5'])
def test_a_plan_halo_is_validated(halo: str) -> None:
    with pytest.raises(ConfigError, match='halo must be'):
        replace(FULL, halo=halo)


def test_a_calibration_is_read_for_the_halo_it_ran_with() -> None:
    from neulens_ros.train.pipeline import calibrated_point
    made = {'caution': 0.5, 'labels': 'paper', 'halo': '2'}
    assert calibrated_point(made, 'paper', '2') == (0.5, None)
    assert calibrated_point({}, 'paper', '2') == (0.0, None)  # none: nothing to refuse
    with pytest.raises(ConfigError, match="'2' halo, this run uses 'paper'"):
        calibrated_point(made, 'paper', 'paper')
    with pytest.raises(ConfigError, match="'paper' halo, this run uses '2'"):
        calibrated_point({'caution': 0.1, 'labels': 'paper'}, 'paper', '2')  # recorded none


def test_labels_are_read_for_the_halo_they_were_computed_with(tmp_path) -> None:
    import numpy as np
    from neulens_ros.train.pipeline import load_labels
    rows = {'image': np.zeros(2, np.int64), 'label': np.array([0, 3])}
    np.savez(tmp_path / 'two.npz', halo=np.asarray('2'), **rows)
    np.savez(tmp_path / 'old.npz', **rows)  # labelled before labels recorded their halo
    assert load_labels(tmp_path / 'two.npz', '2')['label'].tolist() == [0, 3]
    assert 'halo' not in load_labels(tmp_path / 'two.npz', '2')
    assert load_labels(tmp_path / 'old.npz', 'paper')['label'].tolist() == [0, 3]
    with pytest.raises(ConfigError, match="'paper' halo, this run uses '2': delete it"):
        load_labels(tmp_path / 'old.npz', '2')
    with pytest.raises(ConfigError, match="'2' halo, this run uses 'paper'"):
        load_labels(tmp_path / 'two.npz', 'paper')


def test_a_kinds_gate_fits_on_the_plans_extra_scenes_after_the_training_ones() -> None:
    from neulens_ros.train.plan import VAL_SEED, gate_set
    kinds = replace(with_gate_labels(FULL, 'kinds'), gate_scenes=500)
    spec = gate_set(kinds, 7, (256, 192), 'hard')
    assert (spec.first_seed, spec.count) == (7 + FULL.train_scenes, 500)
    assert gate_set(FULL_HARD, 0, (256, 192), 'hard').count == FULL_HARD.gate_scenes > 0
    assert gate_set(replace(kinds, gate_scenes=0), 7, (256, 192)) is None
    assert gate_set(replace(kinds, gate_labels='paper'), 7, (256, 192)) is None  # labels
    with pytest.raises(ConfigError, match='would reach the held-out seeds'):
        gate_set(kinds, VAL_SEED - FULL.train_scenes - 499, (256, 192))


def test_gate_scenes_are_validated() -> None:
    with pytest.raises(ConfigError, match='gate_scenes must be >= 0'):
        replace(FULL, gate_scenes=-1)


def test_the_extra_scenes_join_the_kinds_gates_fit() -> None:
    import torch
    from neulens_ros.gate.cgg import CompressionGuidingGate
    from neulens_ros.supernet.detector import DetectorConfig, TileDetector
    from neulens_ros.train.data import SetSpec, render_set
    from neulens_ros.train.pipeline import fit_kind_gate
    torch.manual_seed(0)
    model = TileDetector(DetectorConfig(input_width=128, input_height=96)).eval()
    plan = replace(with_gate_labels(SMOKE, 'kinds'), label_scenes=1, calibration_scenes=1,
                   gate_epochs=1)
    data = render_set(SetSpec(0, 4, (160, 120), (128, 96)), progress=False)
    extra = render_set(SetSpec(4, 3, (160, 120), (128, 96)), progress=False)
    tiles = [fit_kind_gate(model, CompressionGuidingGate(context=plan.gate_context), data,
                           plan, 0, False, more)['tiles_fit'] for more in (None, extra)]
    assert tiles[0] == 2 * 2 * (4 + 9 + 16)  # 2 images after the held-out and calibration
    assert tiles[1] == tiles[0] * 5 // 2  # and 3 more, each also mirrored


@pytest.mark.parametrize('plan', [FULL, FULL_HARD, SMOKE])
def test_the_gate_calibrates_on_scenes_no_other_set_draws_from(plan) -> None:  # noqa: ANN001
    from neulens_ros.train.plan import (CALIBRATION_SEED, VAL_SEED, WALK_SEEDS, calibration_set,
                                        gate_set, training_set)
    spec = calibration_set(plan, 3, (256, 192), 'hard')
    assert (spec.first_seed, spec.count) == (CALIBRATION_SEED + 3, plan.calibration_scenes)
    assert (spec.render_size, spec.input_size, spec.preset) == (plan.val_render, (256, 192),
                                                                'hard')
    seeds = set(range(spec.first_seed, spec.first_seed + spec.count))
    train = training_set(plan, 3, (256, 192))
    extra = gate_set(with_gate_labels(plan, 'kinds'), 3, (256, 192))
    end = train.first_seed + train.count + (extra.count if extra else 0)
    assert not seeds & set(range(train.first_seed, end))  # the detector's and the gate's
    assert max(seeds) < VAL_SEED < min(WALK_SEEDS)  # the held-out scenes and walks


def test_calibration_scenes_that_would_reach_the_held_out_ones_are_refused() -> None:
    from neulens_ros.train.plan import CALIBRATION_SEED, VAL_SEED, calibration_set
    last = VAL_SEED - CALIBRATION_SEED - FULL.calibration_scenes
    assert calibration_set(FULL, last, (256, 192)).count == FULL.calibration_scenes
    with pytest.raises(ConfigError, match='calibration scenes .* would reach the held-out'):
        calibration_set(FULL, last + 1, (256, 192))


@pytest.mark.parametrize('plan', [FULL_HARD, SMOKE])
def test_the_gate_also_calibrates_on_walks_no_other_set_draws_from(plan) -> None:  # noqa: ANN001
    from neulens_ros.train.plan import (CALIBRATION_SEED, CALIBRATION_WALK_SEED, VAL_SEED,
                                        WALK_SEEDS, calibration_walk_set)
    spec = calibration_walk_set(plan, 3, (256, 192), 'hard')
    assert (spec.first_seed, spec.count, spec.walk_frames) == (
        CALIBRATION_WALK_SEED + 3, plan.calibration_walks, plan.calibration_walk_frames)
    assert (spec.render_size, spec.input_size, spec.preset) == (plan.val_render, (256, 192),
                                                                'hard')
    # after the calibration scenes, below the held-out scenes and walks
    assert CALIBRATION_SEED + plan.calibration_scenes < spec.first_seed
    assert spec.first_seed + spec.count <= VAL_SEED < min(WALK_SEEDS)
    # the easy preset has no walks, and a plan may calibrate on scenes alone
    assert calibration_walk_set(plan, 3, (256, 192), 'easy') is None
    assert calibration_walk_set(FULL, 3, (256, 192), 'hard') is None


def test_calibration_walks_that_would_reach_the_held_out_seeds_are_refused() -> None:
    from neulens_ros.train.plan import CALIBRATION_WALK_SEED, VAL_SEED, calibration_walk_set
    last = VAL_SEED - CALIBRATION_WALK_SEED - FULL_HARD.calibration_walks
    assert calibration_walk_set(FULL_HARD, last, (256, 192), 'hard').first_seed == \
        VAL_SEED - FULL_HARD.calibration_walks
    with pytest.raises(ConfigError, match='calibration walks .* would reach the held-out'):
        calibration_walk_set(FULL_HARD, last + 1, (256, 192), 'hard')


@pytest.mark.parametrize('field, value, message', [
    ('calibration_walks', -1, 'calibration_walks must be >= 0'),
    ('calibration_walk_frames', 0, 'calibration_walk_frames must be >= 1'),
])
def test_a_plan_with_bad_calibration_walks_is_refused(field: str, value: int,
                                                       message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(SMOKE, **{field: value})
