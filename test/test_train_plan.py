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
