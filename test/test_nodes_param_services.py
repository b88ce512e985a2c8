"""Every node's parameters through the plain rcl_interfaces services, as `ros2 param` calls
them: integers for float knobs, out-of-range and wrong-type values, and the ranges that
`ros2 param describe` shows. The knobs come from the nodes' parameter tables, so a new knob is
covered without a change here."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import (DescribeParameters, GetParameters, SetParameters,
                               SetParametersAtomically)

from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.nodes.params import ParamSpec
from neulens_ros.tools.param import from_parameter_value, to_parameter_value
from neulens_ros.tools.services import NodeServices, client_node
from neulens_ros.topology import NodeEntry, load_topology

pytestmark = pytest.mark.ros

NAMESPACE = 'ps'
NODES = load_topology()
# Start values that keep each node idle and cheap: no frames, no model loading, no bag end;
# the source's rate is an integer for a float knob, as in `-p rate_hz:=4` or a YAML file.
OVERRIDES = {
    'source': {'wait_for_subscribers': 100, 'preload_frames': 1, 'rate_hz': 4},
    'supernet': {'autostart': False},
    'recorder': {'topics': ['/nothing'], 'max_duration_s': 3600.0},
}


def specs_of(entry: NodeEntry) -> list[ParamSpec]:
    return importlib.import_module(entry.module).PARAMS


FLOAT_KNOBS = [(entry.name, spec) for entry in NODES for spec in specs_of(entry)
               if spec.kind is float and not spec.read_only]
RANGED = [(entry.name, spec) for entry in NODES for spec in specs_of(entry)
          if spec.minimum is not None and spec.maximum is not None]


def knob_id(value: Any) -> str:
    return value.name if isinstance(value, ParamSpec) else str(value)


class Nodes:
    """Calls the parameter services of the running nodes."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def services(self, node: str) -> NodeServices:
        return NodeServices(self.client, f'/{NAMESPACE}/{node}', timeout_s=60.0)

    def set(self, node: str, name: str, value: ParameterValue) -> Any:
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
        return self.services(node).call(SetParameters, 'set_parameters', request).results[0]

    def get(self, node: str, name: str) -> ParameterValue:
        request = GetParameters.Request(names=[name])
        return self.services(node).call(GetParameters, 'get_parameters', request).values[0]


@pytest.fixture(scope='module')
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    logs = tmp_path_factory.mktemp('param_services')
    overrides = dict(OVERRIDES, recorder={**OVERRIDES['recorder'], 'output_dir': str(logs)})
    with ProcessGroup(env=dict(os.environ), log_dir=logs) as group, \
            client_node('param_services_test') as client:
        for entry in NODES:
            group.start(entry.name, node_command(entry, NAMESPACE, overrides.get(entry.name)))
        yield Nodes(client)
        assert not group.exited(), {p.name: p.read_text()[-1500:] for p in logs.glob('*.log')}


def integers(spec: ParamSpec, value: float) -> int | list[int]:
    """`value` as an integer, in the shape of the spec's default (one number or a list)."""
    number = int(value)
    return [number] * len(spec.default) if isinstance(spec.default, list) else number


def integer_near_default(node: str, spec: ParamSpec) -> int | list[int]:
    """A valid integer value for a float knob, different from the value the node started
    with where possible (near it, so a duration limit never ends the node mid-test)."""
    start = OVERRIDES.get(node, {}).get(spec.name, spec.default)
    if isinstance(start, list):
        return [round(v) for v in start]
    value = round(start)
    if value == start:
        value += 1 if value + 1 <= spec.maximum else -1
    return value


@pytest.mark.parametrize('node,spec', FLOAT_KNOBS, ids=knob_id)
def test_integer_for_float_knob_is_set_as_double(nodes: Nodes, node: str,
                                                 spec: ParamSpec) -> None:
    before = nodes.get(node, spec.name)
    value = integer_near_default(node, spec)
    sent = to_parameter_value(value)
    assert sent.type in (ParameterType.PARAMETER_INTEGER, ParameterType.PARAMETER_INTEGER_ARRAY)
    result = nodes.set(node, spec.name, sent)
    assert result.successful, result.reason
    now = nodes.get(node, spec.name)
    assert now.type in (ParameterType.PARAMETER_DOUBLE, ParameterType.PARAMETER_DOUBLE_ARRAY)
    assert from_parameter_value(now) == pytest.approx(value)
    assert nodes.set(node, spec.name, before).successful


@pytest.mark.parametrize('node,spec', FLOAT_KNOBS, ids=knob_id)
def test_out_of_range_integer_is_rejected_with_the_range(nodes: Nodes, node: str,
                                                         spec: ParamSpec) -> None:
    before = from_parameter_value(nodes.get(node, spec.name))
    for bound, outside in ((spec.minimum, math.floor(spec.minimum) - 1),
                           (spec.maximum, math.ceil(spec.maximum) + 1)):
        result = nodes.set(node, spec.name, to_parameter_value(integers(spec, outside)))
        assert not result.successful
        assert repr(float(bound)) in result.reason, result.reason
        assert from_parameter_value(nodes.get(node, spec.name)) == before


@pytest.mark.parametrize('node,spec', FLOAT_KNOBS, ids=knob_id)
def test_wrong_type_is_rejected(nodes: Nodes, node: str, spec: ParamSpec) -> None:
    before = from_parameter_value(nodes.get(node, spec.name))
    result = nodes.set(node, spec.name, to_parameter_value('fast'))
    assert not result.successful and 'type' in result.reason.lower(), result.reason
    assert from_parameter_value(nodes.get(node, spec.name)) == before


@pytest.mark.parametrize('entry', [e for e in NODES if any(n == e.name for n, _ in FLOAT_KNOBS)],
                         ids=lambda e: e.name)
def test_integers_for_all_float_knobs_at_once(nodes: Nodes, entry: NodeEntry) -> None:
    knobs = [spec for name, spec in FLOAT_KNOBS if name == entry.name]
    before = [nodes.get(entry.name, spec.name) for spec in knobs]
    request = SetParametersAtomically.Request(parameters=[
        ParameterMsg(name=spec.name,
                     value=to_parameter_value(integer_near_default(entry.name, spec)))
        for spec in knobs])
    result = nodes.services(entry.name).call(SetParametersAtomically,
                                             'set_parameters_atomically', request).result
    assert result.successful, result.reason
    for spec in knobs:
        assert from_parameter_value(nodes.get(entry.name, spec.name)) == pytest.approx(
            integer_near_default(entry.name, spec))
    for spec, value in zip(knobs, before, strict=True):
        assert nodes.set(entry.name, spec.name, value).successful


@pytest.mark.parametrize('node,spec', RANGED, ids=knob_id)
def test_describe_shows_the_range(nodes: Nodes, node: str, spec: ParamSpec) -> None:
    request = DescribeParameters.Request(names=[spec.name])
    (desc,) = nodes.services(node).call(DescribeParameters, 'describe_parameters',
                                        request).descriptors
    ranges = desc.integer_range if spec.kind is int else desc.floating_point_range
    assert [(r.from_value, r.to_value) for r in ranges] == [(spec.minimum, spec.maximum)]


def test_integer_start_value_of_a_float_knob_is_a_double(nodes: Nodes) -> None:
    value = nodes.get('source', 'rate_hz')
    assert value.type == ParameterType.PARAMETER_DOUBLE and value.double_value == 4.0


def test_bad_start_value_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    (recorder,) = [e for e in NODES if e.name == 'recorder']
    cmd = node_command(recorder, NAMESPACE, {'max_duration_s': -5,
                                             'output_dir': str(tmp_path)})
    res = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and 'max_duration_s' in res.stderr, res.stderr
    assert 'Traceback' not in res.stderr, res.stderr
