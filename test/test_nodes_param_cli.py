"""neulens-param against a real node in another process (the services `ros2 param` uses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.topology import load_topology

pytestmark = pytest.mark.ros


def param_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'neulens_ros.tools.param', '--timeout', '20',
                           *args], env=env, capture_output=True, text=True, timeout=60)


def test_list_get_set_reject_on_a_live_node(tmp_path: Path, ros_env: dict[str, str]) -> None:
    (recorder,) = [n for n in load_topology() if n.name == 'recorder']
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('recorder', node_command(recorder, 'pt', {
            'output_dir': str(tmp_path), 'bag_name': 'b', 'topics': ['/nothing']}))
        listed = param_cli(ros_env, 'list', '/pt/recorder')
        assert listed.returncode == 0, listed.stderr
        assert 'max_duration_s' in listed.stdout and 'storage' in listed.stdout
        got = param_cli(ros_env, 'get', '/pt/recorder', 'storage')
        assert got.stdout.strip() == 'storage: mcap'
        ok = param_cli(ros_env, 'set', '/pt/recorder', 'max_duration_s', '3600')
        assert ok.returncode == 0 and 'successful' in ok.stdout
        assert param_cli(ros_env, 'get', '/pt/recorder',
                         'max_duration_s').stdout.strip() == 'max_duration_s: 3600.0'
        bad = param_cli(ros_env, 'set', '/pt/recorder', 'max_duration_s', '-5')
        assert bad.returncode == 1 and 'out of range' in bad.stdout
        assert param_cli(ros_env, 'get', '/pt/recorder',
                         'max_duration_s').stdout.strip() == 'max_duration_s: 3600.0'
        ro = param_cli(ros_env, 'set', '/pt/recorder', 'storage', 'sqlite3')
        assert ro.returncode == 1 and 'read-only' in ro.stdout
        desc = param_cli(ros_env, 'describe', '/pt/recorder', 'max_duration_s')
        assert 'range: 0.0 .. 86400.0' in desc.stdout
        codes = group.stop()
    assert codes['recorder'] == 0
    assert (tmp_path / 'b' / 'metadata.yaml').is_file()  # bag finished on SIGINT


def test_missing_node_is_a_clear_error(ros_env: dict[str, str]) -> None:
    res = subprocess.run([sys.executable, '-m', 'neulens_ros.tools.param', '--timeout', '1',
                          'list', '/no_such_node'], env=ros_env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and 'not found' in res.stderr
