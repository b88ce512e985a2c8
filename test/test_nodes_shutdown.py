"""Every node stops cleanly on SIGINT and SIGTERM, idle and mid-stream (the whole graph
running on generated frames): exit code 0 within 5 s, no traceback, no use of a shut-down
context; also when the signal comes again and again during the cleanup, and when it comes
while the nodes still import their modules. The lifecycle node releases its engines on the way
out; the recorder finishes its bag."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.nodes.common import READY, STOPPED_STARTING
from neulens_ros.stop_check import (START_TIMEOUT_S, STOP_TIMEOUT_S, StopResult, stop_node,
                                    stop_round, stop_while_starting)
from neulens_ros.topology import load_topology

pytestmark = pytest.mark.ros

# Signals in turn, downstream first (recorder, lifting, supernet, gate, source): with both
# orders every node gets both signals.
ORDERS = [(signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)]


def assert_clean(results: list[StopResult]) -> None:
    assert len(results) == 5
    unclean = [r for r in results if not r.clean]
    assert not unclean, '\n'.join(f'{r}\n{r.log[-2500:]}' for r in unclean)


def assert_clean_at_work(results: list[StopResult]) -> None:
    assert_clean(results)
    assert max(r.seconds for r in results) < STOP_TIMEOUT_S
    (supernet,) = [r for r in results if r.node == 'supernet']
    assert 'finalized: detector and engines released' in supernet.log


@pytest.mark.parametrize('signals', ORDERS, ids=lambda s: s[0].name)
def test_idle_nodes_stop_cleanly(tmp_path: Path, ros_env: dict[str, str],
                                 signals: tuple[int, int]) -> None:
    assert_clean_at_work(stop_round(ros_env, tmp_path, signals, mid_stream=False))


@pytest.mark.parametrize('signals', ORDERS, ids=lambda s: s[0].name)
def test_nodes_stop_cleanly_mid_stream(tmp_path: Path, ros_env: dict[str, str],
                                       signals: tuple[int, int]) -> None:
    results = stop_round(ros_env, tmp_path, signals)
    assert_clean_at_work(results)
    assert len(list(tmp_path.glob('*/metadata.yaml'))) == 1  # the bag was finished


def test_signal_repeated_during_cleanup_is_ignored(tmp_path: Path,
                                                   ros_env: dict[str, str]) -> None:
    assert_clean_at_work(stop_round(ros_env, tmp_path, (signal.SIGINT,), repeat=True))


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_nodes_stop_cleanly_while_they_start(tmp_path: Path, ros_env: dict[str, str],
                                             sig: int) -> None:
    results = stop_while_starting(ros_env, tmp_path, sig)
    assert_clean(results)
    # the nodes that load torch were still importing: they end before rclpy starts, in a line
    still_starting = {r.node for r in results if STOPPED_STARTING in r.log}
    assert {'gate', 'supernet'} <= still_starting, '\n'.join(f'{r}\n{r.log[-1500:]}'
                                                            for r in results)


def test_a_source_stops_cleanly_while_it_prepares_its_frames(tmp_path: Path,
                                                               ros_env: dict[str, str]) -> None:
    (source,) = [n for n in load_topology() if n.name == 'source']
    cmd = node_command(source, 'preloading', {'preload_frames': 2000})  # minutes of rendering
    with ProcessGroup(env=ros_env, log_dir=tmp_path) as group:
        group.start('source', cmd)
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY not in group.log('source') and time.monotonic() < deadline \
                and not group.exited():
            time.sleep(0.2)
        assert READY in group.log('source'), group.log('source')[-2000:]
        result = stop_node(group, 'source', signal.SIGINT)
    assert result.clean and result.seconds < STOP_TIMEOUT_S, f'{result}\n{result.log[-2000:]}'
    assert 'prepared' not in result.log  # it was still preparing its frames
