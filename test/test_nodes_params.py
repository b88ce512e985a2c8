"""ParamSpec validation and the live on-set callback (what `ros2 param set` sees)."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from neulens_ros.errors import ConfigError
from neulens_ros.nodes.params import LiveParameters, ParamSpec

SPECS = [
    ParamSpec('latency_slo_ms', 100.0, 'latency SLO', minimum=1.0, maximum=10000.0, units='ms'),
    ParamSpec('policy', 'cs', 'policy', choices=('cs', 'uniform', 'min', 'fixed')),
    ParamSpec('k_options', [2, 3, 4], 'k options', item_type=int, minimum=2, maximum=4),
    ParamSpec('backend', 'torch', 'backend', read_only=True),
    ParamSpec('enabled', True, 'flag'),
]


@pytest.mark.parametrize('spec,value,fragment', [
    (SPECS[0], 0.5, 'below the minimum'),
    (SPECS[0], 20000.0, 'above the maximum'),
    (SPECS[0], 'fast', 'must be of type float'),
    (SPECS[1], 'greedy', "not one of 'cs'"),
    (SPECS[2], [2, 5], 'above the maximum'),
    (SPECS[2], [], 'non-empty list'),
    (SPECS[2], 3, 'non-empty list'),
    (SPECS[4], 1, 'must be of type bool'),
    (SPECS[1], ['cs'], 'single value'),
])
def test_check_rejects_with_reason(spec: ParamSpec, value: object, fragment: str) -> None:
    assert fragment in spec.check(value)


def test_check_accepts_valid_values_and_ints_for_floats() -> None:
    assert SPECS[0].check(50) == '' and SPECS[0].check(50.0) == ''
    assert SPECS[2].check([3]) == '' and SPECS[1].check('min') == ''


@pytest.mark.parametrize('kwargs,fragment', [
    (dict(name='a', default=5.0, description='', minimum=10.0), 'default is invalid'),
    (dict(name='a', default=1, description='', minimum=3, maximum=2), 'minimum > maximum'),
    (dict(name='a', default=[1], description=''), 'item_type'),
    (dict(name='a', default=[], description='', item_type=int), 'non-empty'),
])
def test_bad_specs_are_rejected(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ParamSpec(**kwargs)


def test_descriptor_carries_range_and_read_only() -> None:
    desc = SPECS[0].descriptor()
    assert desc.floating_point_range[0].from_value == 1.0
    assert desc.floating_point_range[0].to_value == 10000.0
    assert '[ms]' in desc.description
    assert SPECS[3].descriptor().read_only
    assert 'one of: cs, uniform' in SPECS[1].descriptor().description


def test_on_set_is_atomic_and_cross_checked() -> None:
    applied: list[dict] = []
    live = LiveParameters(
        specs=SPECS, values={s.name: s.default for s in SPECS},
        validate=lambda v: 'fixed policy needs k=2' if v['policy'] == 'fixed'
        and v['k_options'] != [2] else '', apply=applied.append)
    ok = live.on_set([Parameter('latency_slo_ms', value=50.0), Parameter('policy', value='min')])
    assert ok.successful and live.values['latency_slo_ms'] == 50.0 and len(applied) == 1
    # One bad value in a batch: nothing of the batch changes.
    bad = live.on_set([Parameter('latency_slo_ms', value=70.0),
                       Parameter('policy', value='nope')])
    assert not bad.successful and "'nope'" in bad.reason
    assert live.values['latency_slo_ms'] == 50.0 and len(applied) == 1
    cross = live.on_set([Parameter('policy', value='fixed')])
    assert not cross.successful and 'needs k=2' in cross.reason
    assert live.values['policy'] == 'min'


def test_pre_set_turns_integers_into_doubles_for_float_knobs_only() -> None:
    up = ParamSpec('up', [0.0, 1.0], 'up vector', item_type=float, minimum=-1.0, maximum=1.0)
    live = LiveParameters(specs=[*SPECS, up])
    out = live.pre_set([Parameter('latency_slo_ms', value=60), Parameter('up', value=[0, -1]),
                        Parameter('k_options', value=[2, 3]), Parameter('policy', value='min'),
                        Parameter('use_sim_time', value=1)])
    assert [p.type_ for p in out] == [Parameter.Type.DOUBLE, Parameter.Type.DOUBLE_ARRAY,
                                      Parameter.Type.INTEGER_ARRAY, Parameter.Type.STRING,
                                      Parameter.Type.INTEGER]
    assert out[0].value == 60.0 and list(out[1].value) == [0.0, -1.0]
    assert [r.from_value for r in up.descriptor().floating_point_range] == [-1.0]
    assert [(r.from_value, r.to_value) for r in SPECS[2].descriptor().integer_range] == [(2, 4)]
