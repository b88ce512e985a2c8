"""Stopping the pipeline's nodes, idle or mid-stream, and checking every stop: exit code 0
within STOP_TIMEOUT_S and no traceback, on SIGINT or SIGTERM, also with the signal repeated
during the node's cleanup (a second Ctrl-C; the terminal's SIGINT, then launch's), and while
the nodes still start (a Ctrl-C right after the launch; the end within START_TIMEOUT_S).

The shutdown tests and scripts/stop_nodes.py run these rounds.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from neulens_ros.errors import LaunchError
from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.nodes.common import READY
from neulens_ros.topology import NodeEntry, load_topology

STOP_TIMEOUT_S = 5.0
REPEAT_PERIOD_S = 0.02  # with `repeat`, the signal is sent again this often until the exit
START_TIMEOUT_S = 240.0  # model loading on a busy 2-core machine
STARTING_AFTER_S = 1.0  # a signal this long after the start lands in the nodes' imports
PROBLEMS = ('Traceback', 'context is invalid')  # output that makes a stop unclean
# Start values per node: mid-stream, every stage logs its timings and the source waits for
# its subscribers; idle, the source never starts sending.
MID_STREAM: dict[str, dict[str, Any]] = {
    'source': {'preload_frames': 3, 'wait_for_subscribers': 1, 'log_timing': True},
    'gate': {'log_timing': True},
    'supernet': {'log_timing': True, 'stale_after_ms': 0.0},
    'lifting': {'log_timing': True},
}
IDLE: dict[str, dict[str, Any]] = {'source': {'preload_frames': 1, 'wait_for_subscribers': 100}}


@dataclass(frozen=True)
class StopResult:
    """How one node ended after its stop signal."""

    node: str
    signal: str
    code: int | None  # None: still running at the timeout
    seconds: float
    log: str

    @property
    def problem(self) -> str:
        """What was not clean about the stop ('' when nothing)."""
        if self.code is None:
            return f'still running after {self.seconds:.1f} s'
        if self.code != 0:
            return f'exit code {self.code}'
        return next((f'{text!r} in its output' for text in PROBLEMS if text in self.log), '')

    @property
    def clean(self) -> bool:
        return not self.problem

    def __str__(self) -> str:
        return (f'{self.node} {self.signal}: exit {self.code} in {self.seconds:.2f} s, '
                + (self.problem or 'clean'))


def busy_marker(name: str, namespace: str, mid_stream: bool) -> str:
    """The log text that shows the node at work: a frame's timing mid-stream (the recorder:
    its subscription to the camera), else built and spinning (the supernet: active)."""
    if mid_stream:
        if name == 'recorder':
            return f'recording /{namespace}/camera/color/image_raw ['
        return f'timing {name} stamp='
    return 'active: processing' if name == 'supernet' else READY


def wait_until_busy(group: ProcessGroup, markers: Mapping[str, str], timeout_s: float) -> None:
    """Wait until every node's log shows its marker; LaunchError with the logs otherwise."""
    deadline = time.monotonic() + timeout_s
    waiting = dict(markers)
    while waiting and time.monotonic() < deadline and not group.exited():
        waiting = {n: m for n, m in waiting.items() if m not in group.log(n)}
        time.sleep(0.2)
    if waiting or group.exited():
        logs = '\n'.join(f'--- {n}\n{group.log(n)[-1500:]}' for n in group.procs)
        raise LaunchError(f'not at work after {timeout_s:.0f} s: {sorted(waiting)}; ended: '
                          f'{group.exited()}\n{logs}')


def await_stop(group: ProcessGroup, name: str, sig: int, started: float, timeout_s: float,
               repeat: bool = False) -> StopResult:
    """Wait for the end of node `name`, signalled with `sig` at time `started` (monotonic s);
    with `repeat`, signal it again every REPEAT_PERIOD_S."""
    proc = group.procs[name]
    deadline = started + timeout_s
    while proc.poll() is None and (left := deadline - time.monotonic()) > 0:
        try:
            proc.wait(timeout=min(left, REPEAT_PERIOD_S) if repeat else left)
        except subprocess.TimeoutExpired:
            if repeat:
                proc.send_signal(sig)
    return StopResult(name, signal.Signals(sig).name, proc.poll(),
                      time.monotonic() - started, group.log(name))


def stop_node(group: ProcessGroup, name: str, sig: int, repeat: bool = False,
              timeout_s: float = STOP_TIMEOUT_S) -> StopResult:
    """Signal one node (again every REPEAT_PERIOD_S with `repeat`) and wait for its end."""
    started = time.monotonic()
    group.procs[name].send_signal(sig)
    return await_stop(group, name, sig, started, timeout_s, repeat)


def start_nodes(group: ProcessGroup, log_dir: Path, starts: Mapping[str, Mapping[str, Any]],
                namespace: str) -> list[NodeEntry]:
    """Start every node of the topology in `group` with its `starts` values; the entries."""
    nodes = load_topology()
    for entry in nodes:
        values = dict(starts.get(entry.name, {}))
        if entry.name == 'recorder':
            values['output_dir'] = str(log_dir)
        group.start(entry.name, node_command(entry, namespace, values))
    return nodes


def stop_round(env: Mapping[str, str], log_dir: Path, signals: Sequence[int],
               mid_stream: bool = True, repeat: bool = False,
               namespace: str = 'stops') -> list[StopResult]:
    """Start every node of the topology, wait until each is at work, then stop them one by
    one, downstream first (each still has input when its signal comes), with `signals` in
    turn."""
    starts = MID_STREAM if mid_stream else IDLE
    with ProcessGroup(env=env, log_dir=log_dir) as group:
        nodes = start_nodes(group, log_dir, starts, namespace)
        wait_until_busy(group, {n.name: busy_marker(n.name, namespace, mid_stream)
                                for n in nodes}, START_TIMEOUT_S)
        return [stop_node(group, entry.name, sig, repeat)
                for entry, sig in zip(reversed(nodes), itertools.cycle(signals))]


def stop_while_starting(env: Mapping[str, str], log_dir: Path, sig: int,
                        after_s: float = STARTING_AFTER_S,
                        namespace: str = 'starting') -> list[StopResult]:
    """Start every node (idle), and `after_s` later signal all at once, while the nodes still
    import their modules or build; each must end within START_TIMEOUT_S, cleanly."""
    with ProcessGroup(env=env, log_dir=log_dir) as group:
        nodes = start_nodes(group, log_dir, IDLE, namespace)
        time.sleep(after_s)
        started = time.monotonic()
        for entry in nodes:
            group.procs[entry.name].send_signal(sig)
        return [await_stop(group, entry.name, sig, started, START_TIMEOUT_S) for entry in nodes]
