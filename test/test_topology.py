"""The node graph description shared by the launch files and neulens-pipeline."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from neulens_ros.errors import ConfigError
from neulens_ros.launching import dds_environment, format_param, node_command
from neulens_ros.tools.pipeline import main as pipeline_main
from neulens_ros.tools.pipeline import parse_overrides
from neulens_ros.runtime import BACKENDS
from neulens_ros.topology import (LAUNCH_ARGS, NodeEntry, config_dir, fastdds_profile_variable,
                                  launch_args, load_topology)

LAUNCH_DIR = Path(__file__).resolve().parent.parent / 'launch'


def test_shipped_topology_is_valid_and_has_config_files() -> None:
    nodes = load_topology()
    assert {'source', 'recorder'} <= {n.name for n in nodes}
    for node in nodes:
        assert (config_dir() / node.config).is_file(), node
        __import__(node.module)  # every executable is a real module


def test_node_command_matches_ros2_launch_arguments() -> None:
    entry = NodeEntry(name='source', executable='source_node', role='headset',
                      config='source.yaml')
    cmd = node_command(entry, 'robot1', {'rate_hz': 10.0, 'topics': ['a:b/msg/C'],
                                         'flag': True})
    assert cmd[1:5] == ['-m', 'neulens_ros.nodes.entry', 'source_node', '--ros-args']
    assert '__ns:=/robot1' in cmd and '__node:=source' in cmd
    assert cmd[cmd.index('--params-file') + 1].endswith('source.yaml')
    assert 'rate_hz:=10.0' in cmd and "topics:=['a:b/msg/C']" in cmd and 'flag:=true' in cmd


@pytest.mark.parametrize('value,text', [(True, 'true'), (3, '3'), (0.5, '0.5'), ('', "''"),
                                        ([1, 2], '[1,2]'), ('x', 'x')])
def test_format_param(value: object, text: str) -> None:
    assert format_param(value) == text


@pytest.mark.parametrize('yaml_text,fragment', [
    ('nodes: []', 'non-empty list'),
    ('nodes:\n  - {name: a, executable: b, role: cloud, config: c.yaml}', "role 'cloud'"),
    ('nodes:\n  - {name: a-b, executable: b, role: edge, config: c.yaml}', 'identifiers'),
    ('nodes:\n  - {name: a, executable: b, role: edge, config: c, colour: red}', 'node #0'),
    ('nodes:\n  - {name: a, executable: b, role: edge, config: c, arg_params: {x: nope}}',
     'unknown launch arguments'),
    ('nodes:\n  - {name: a, executable: b, role: edge, config: c, when: nope}',
     'unknown launch arguments'),
    ('nodes:\n  - {name: a, executable: b, role: edge, config: c}\n'
     '  - {name: a, executable: b, role: edge, config: c}', 'unique'),
    (': [', 'cannot read'),
])
def test_bad_topology_is_rejected(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    path = tmp_path / 'topology.yaml'
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=fragment):
        load_topology(path)


def test_when_condition() -> None:
    entry = NodeEntry(name='r', executable='recorder_node', role='headset', config='c',
                      when='record_bag')
    assert entry.enabled({'record_bag': 'true'}) and entry.enabled({'record_bag': True})
    assert not entry.enabled({'record_bag': 'false'}) and not entry.enabled({})


def test_overrides_parse_and_reject() -> None:
    assert parse_overrides(['source.rate_hz=10', 'gate.policy=min']) == {
        'source': {'rate_hz': 10}, 'gate': {'policy': 'min'}}
    with pytest.raises(ConfigError, match='NODE.PARAM=VALUE'):
        parse_overrides(['rate_hz=10'])


def test_pipeline_cli_rejects_unknown_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert pipeline_main(['--set', 'nonode.x=1', '--duration', '0.1']) == 2
    assert 'not started' in capsys.readouterr().out


def launch_file_roles(path: Path) -> tuple[str, ...]:
    """The roles a launch file passes to pipeline_launch_description (read, not run: `launch`
    is not installed everywhere)."""
    (call,) = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
               and getattr(n.func, 'id', '') == 'pipeline_launch_description']
    (roles,) = [k.value for k in call.keywords if k.arg == 'roles']
    return ast.literal_eval(roles)


@pytest.mark.parametrize('name,expected', [
    ('edge', {'namespace', 'backend'}),
    ('headset', {'namespace', 'use_sample_data', 'record_bag', 'bag_dir'}),
    ('mr_pipeline', set(LAUNCH_ARGS)),
])
def test_launch_files_declare_the_arguments_that_act(name: str, expected: set[str]) -> None:
    path = LAUNCH_DIR / f'{name}.launch.py'
    assert set(launch_args(load_topology(), launch_file_roles(path))) == expected
    usage = ast.get_docstring(ast.parse(path.read_text()))
    assert set(re.findall(r'\[(\w+):=', usage)) == expected


def test_backend_argument_lists_every_backend() -> None:
    description = LAUNCH_ARGS['backend'][1]
    assert 'torchscript' in BACKENDS
    assert all(backend in description for backend in BACKENDS), description


@pytest.mark.parametrize('distro, variable', [
    ('', 'FASTDDS_DEFAULT_PROFILES_FILE'),  # the Kilted wheels: no ROS_DISTRO
    ('kilted', 'FASTDDS_DEFAULT_PROFILES_FILE'),
    ('rolling', 'FASTDDS_DEFAULT_PROFILES_FILE'),
    ('jazzy', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
    ('Humble', 'FASTRTPS_DEFAULT_PROFILES_FILE')])
def test_fastdds_profile_variable_follows_the_distribution(distro, variable, monkeypatch
                                                           ) -> None:
    """Fast DDS 2 (Humble..Jazzy) reads the old variable, Fast DDS 3 the new one: the nodes the
    package starts get the shipped profile through the one their Fast DDS reads."""
    assert fastdds_profile_variable(distro) == variable
    monkeypatch.setenv('ROS_DISTRO', distro)
    monkeypatch.delenv('FASTDDS_DEFAULT_PROFILES_FILE', raising=False)
    monkeypatch.delenv('FASTRTPS_DEFAULT_PROFILES_FILE', raising=False)
    env = dds_environment()
    assert env[variable].endswith('fastdds_local.xml')
    both = {'FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'}
    assert not (both - {variable}) & set(env)
