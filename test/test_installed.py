"""The installed package as a user runs it: from a folder outside the checkout, with the venv's
interpreter and scripts and without the source tree on sys.path (so it cannot shadow what
`pip install` put in the venv), and the node executables where `ros2 run` looks for them."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Callable

import pytest

from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.tools.bench import COMMANDS as BENCH_COMMANDS
from neulens_ros.tools.eval import COMMANDS as EVAL_COMMANDS
from neulens_ros.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'neulens_ros'
# What the installed package says about itself, asked from the user's folder.
PROBE = f'''import importlib.metadata, json, {PACKAGE}
dist = importlib.metadata.distribution('{PACKAGE}')
print(json.dumps({{'module': {PACKAGE}.__file__, 'files': [str(f) for f in dist.files],
                  'scripts': {{e.name: e.value for e in dist.entry_points
                              if e.group == 'console_scripts'}}}}))'''


def declared(name: str) -> dict[str, str]:
    """setup.py's console script table `name` (NODES or TOOLS)."""
    (table,) = [node.value for node in ast.parse((ROOT / 'setup.py').read_text()).body
                if isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == [name]]
    return ast.literal_eval(table)


NODES, TOOLS = declared('NODES'), declared('TOOLS')
INVOCATIONS = ([[tool] for tool in TOOLS]
               + [['neulens-eval', command] for command in EVAL_COMMANDS]
               + [['neulens-bench', command] for command in [*BENCH_COMMANDS, 'supernet']])


@pytest.fixture
def installed(tmp_path: Path, user_env: dict[str, str]) -> dict:
    probe = subprocess.run([sys.executable, '-c', PROBE], cwd=tmp_path, env=user_env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    return json.loads(probe.stdout)


def test_the_installed_package_runs_not_the_checkout(installed: dict) -> None:
    site = Path(sysconfig.get_path('purelib'))  # where pip installed it, not the source tree
    assert Path(installed['module']).parent == site / PACKAGE, installed['module']
    assert installed['scripts'] == {**NODES, **TOOLS}


def test_the_installed_files_hold_every_module(installed: dict) -> None:
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / PACKAGE).rglob('*.py')}
    missing = sorted(modules - set(installed['files']))
    assert not missing, f'not installed: {missing} (scripts/setup.sh installs the package)'


@pytest.mark.parametrize('command', INVOCATIONS, ids=' '.join)
def test_every_tool_starts_from_outside_the_checkout(command: list[str],
                                                     run_installed: Callable) -> None:
    run = run_installed(*command, '--help')
    assert run.returncode == 0 and run.stdout.strip(), run.stdout[-2000:] + run.stderr[-3000:]


def test_lifting_evaluation_runs_from_outside_the_checkout(tmp_path: Path,
                                                           run_installed: Callable) -> None:
    run = run_installed('neulens-eval', 'lifting', '--scenes', '2', '--out', 'out',
                        timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / 'out' / 'lifting.json').read_text())['summary']
    assert summary['objects'] > 0 and summary['skipped'] == 0


def libexec(name: str) -> Path:
    """Where `ros2 run neulens_ros <name>` and launch_ros find a node executable: the package's
    prefix in the ament index, then lib/<package>/."""
    from ament_index_python.packages import get_package_prefix
    return Path(get_package_prefix(PACKAGE)) / 'lib' / PACKAGE / name


def test_every_node_executable_is_where_ros2_run_looks() -> None:
    for name in NODES:
        path = libexec(name)
        assert path.is_file() and os.access(path, os.X_OK), path


@pytest.mark.ros
def test_a_node_comes_up_through_its_libexec_executable(tmp_path: Path, user_env: dict[str, str],
                                                        rclpy_context) -> None:
    import rclpy
    (recorder,) = [n for n in load_topology() if n.name == 'recorder']
    cmd = node_command(recorder, 'installed', {'output_dir': str(tmp_path), 'bag_name': 'b',
                                               'topics': ['/nothing']})
    listener = rclpy.create_node('listener', context=rclpy_context)
    with ProcessGroup(env=user_env, log_dir=tmp_path / 'logs') as group:
        group.start('recorder', [str(libexec('recorder_node')),
                                 *cmd[cmd.index('--ros-args'):]], cwd=tmp_path)
        deadline = time.monotonic() + 30
        while ('recorder', '/installed') not in listener.get_node_names_and_namespaces() \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ('recorder', '/installed') in listener.get_node_names_and_namespaces()
        codes = group.stop()
    listener.destroy_node()
    assert codes['recorder'] == 0
