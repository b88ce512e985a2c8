"""Test isolation: every pytest process group gets its own ROS domain, localhost discovery,
the shipped Fast DDS profile, and CPU threads limited so parallel jobs do not starve."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
def rclpy_context():
    """An initialised rclpy context for in-process nodes, shut down after the test."""
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
