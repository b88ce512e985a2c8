"""The node executables' entry points: one per node of the topology, each in setup.py's
console scripts; an unknown node or a missing name is a usage error, not a traceback."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from neulens_ros.nodes.entry import NODE_EXECUTABLES, start
from neulens_ros.nodes.stop import STOP_SIGNALS, StopRequest
from neulens_ros.topology import load_topology


def test_every_node_of_the_topology_has_an_entry_point() -> None:
    import neulens_ros.nodes.entry as entry
    assert set(NODE_EXECUTABLES) == {n.executable for n in load_topology()}
    assert all(callable(getattr(entry, name)) for name in NODE_EXECUTABLES)


def test_an_unknown_node_is_refused_before_anything_loads(capsys) -> None:
    assert start('camera_node') == 2
    assert "no node executable 'camera_node'" in capsys.readouterr().err


def test_the_entry_module_without_a_node_prints_its_usage() -> None:
    run = subprocess.run([sys.executable, '-m', 'neulens_ros.nodes.entry'],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and 'usage: python -m neulens_ros.nodes.entry <' in run.stderr


@pytest.mark.parametrize('sig', STOP_SIGNALS, ids=lambda s: s.name)
def test_a_stop_request_records_the_first_signal_and_ignores_the_rest(sig: int) -> None:
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        stop = StopRequest()
        assert stop.signal is None and stop.name == ''
        signal.raise_signal(sig)
        assert stop.signal == sig and stop.name == signal.Signals(sig).name
        assert all(signal.getsignal(s) == signal.SIG_IGN for s in STOP_SIGNALS)
        signal.raise_signal(sig)  # ignored: the process is still here
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
