"""Test isolation: every pytest process group gets its own ROS domain, localhost discovery,
the shipped Fast DDS profile, and CPU threads limited so parallel jobs do not starve."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from neulens_ros.launching import dds_environment  # noqa: E402

# Domain ids 1..100 (Fast DDS ports stay valid); derived from the PID so concurrent runs differ.
DOMAIN_ID = 1 + os.getpid() % 100
os.environ.update(dds_environment(domain_id=DOMAIN_ID))
os.environ['PYTHONPATH'] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture
def ros_env() -> dict[str, str]:
    """Environment for node subprocesses: same isolated domain, source tree on PYTHONPATH."""
    return dict(os.environ)


@pytest.fixture
def user_env() -> dict[str, str]:
    """Environment of a user's shell for the installed package: the same isolated domain,
    without the source tree on PYTHONPATH."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in env['PYTHONPATH'].split(os.pathsep) if Path(p).resolve() != ROOT)
    return env


@pytest.fixture
def run_installed(tmp_path: Path, user_env: dict[str, str]
                  ) -> Callable[..., subprocess.CompletedProcess]:
    """Runs a command as a user types it, from tmp_path (outside the checkout) with user_env:
    its first word is a console script where pip installed them for this interpreter."""
    scripts = Path(sysconfig.get_path('scripts'))

    def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(scripts / command[0]), *command[1:]], cwd=tmp_path,
                              env=user_env, capture_output=True, text=True, timeout=timeout)
    return run


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context for in-process nodes, shut down after the test."""
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
