"""neulens-pipeline --respawn: a node process that dies is started again, and the tool says so.

The unit tests run real short-lived processes; the last test starts the whole graph with
`neulens-pipeline --respawn`, SIGKILLs the supernet node's process and waits for 2D detections
to come back, while the other nodes keep their processes."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from neulens_ros.errors import ConfigError
from neulens_ros.launch_graph import RESPAWN_MAX_RETRIES, respawn_arguments
from neulens_ros.launching import ProcessGroup
from neulens_ros.respawn import Respawner, RespawnPolicy, describe_exit
from neulens_ros.tools.pipeline import main as pipeline_main
from neulens_ros.topology import load_topology


class Clock:
    """A monotonic clock the test moves by hand, so restart delays need no sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def exiting(code: int) -> list[str]:
    return [sys.executable, '-c', f'raise SystemExit({code})']


def poll_until_exited(group: ProcessGroup, respawner: Respawner, name: str) -> list[str]:
    """Wait for `name`'s current process to end, then poll the respawner once."""
    group.wait(name, timeout=30.0)
    return respawner.poll()


def test_dead_process_is_restarted_after_its_delay_and_reported(tmp_path: Path) -> None:
    clock = Clock()
    with ProcessGroup(env=dict(os.environ), log_dir=tmp_path) as group:
        first = group.start('supernet', exiting(3))
        respawner = Respawner(group, {'supernet': RespawnPolicy(delay_s=2.0)}, clock=clock)
        assert poll_until_exited(group, respawner, 'supernet') == []  # scheduled, not yet due
        assert respawner.pending and group.procs['supernet'] is first
        clock.now = 2.0
        (line,) = respawner.poll()
        second = group.procs['supernet']
        assert second is not first
        assert line == (f'respawn: supernet died (exit code 3), restarted as pid {second.pid} '
                        '(restart 1, 1 in the last 60 s)')
        assert respawner.restarts == {'supernet': 1} and not respawner.pending


@pytest.mark.parametrize('name,code,policies', [
    ('source', 0, {'source': RespawnPolicy(delay_s=0.0)}),  # finished its work
    ('recorder', 5, {'source': RespawnPolicy(delay_s=0.0)}),  # not respawnable
])
def test_finished_or_unlisted_process_is_not_restarted(name: str, code: int,
                                                       policies: dict) -> None:
    with ProcessGroup(env=dict(os.environ)) as group:
        first = group.start(name, exiting(code))
        respawner = Respawner(group, policies, clock=Clock())
        assert poll_until_exited(group, respawner, name) == []
        assert respawner.poll() == [] and group.procs[name] is first
        assert not respawner.pending and respawner.restarts == {}


def test_restarts_are_bounded_per_minute() -> None:
    clock = Clock()
    with ProcessGroup(env=dict(os.environ)) as group:
        group.start('gate', exiting(1))
        respawner = Respawner(group, {'gate': RespawnPolicy(delay_s=0.0, max_per_minute=2)},
                              clock=clock)
        lines = []
        for _ in range(3):
            lines += poll_until_exited(group, respawner, 'gate')
            clock.now += 1.0
        assert [line.split(',')[0] for line in lines] == [
            'respawn: gate died (exit code 1)'] * 2 + ['respawn: gate died (exit code 1) after 2 '
                                                       'restarts within 60 s: not restarting it '
                                                       '(bound 2 per minute)']
        assert respawner.given_up == {'gate'} and respawner.restarts == {'gate': 2}
        assert respawner.poll() == []  # said once
        # a minute later the window is clear again, but a node given up on stays down
        clock.now += 60.0
        assert respawner.poll() == [] and group.procs['gate'].poll() is not None


@pytest.mark.parametrize('kwargs,fragment', [({'delay_s': -1.0}, 'delay'),
                                             ({'max_per_minute': 0}, 'at least 1')])
def test_bad_respawn_policy_is_rejected(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        RespawnPolicy(**kwargs)


@pytest.mark.parametrize('code,text', [(-9, 'signal SIGKILL, exit code -9'),
                                       (-15, 'signal SIGTERM, exit code -15'),
                                       (-99, 'signal 99, exit code -99'), (2, 'exit code 2')])
def test_describe_exit(code: int, text: str) -> None:
    assert describe_exit(code) == text


def test_restart_needs_an_ended_process_that_was_started() -> None:
    with ProcessGroup(env=dict(os.environ)) as group:
        with pytest.raises(ConfigError, match='no process named gate'):
            group.restart('gate')
        group.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(30)'])
        with pytest.raises(ConfigError, match='still running'):
            group.restart('sleeper')


def test_restarted_process_appends_to_its_log(tmp_path: Path) -> None:
    with ProcessGroup(env=dict(os.environ), log_dir=tmp_path) as group:
        group.start('talker', [sys.executable, '-c', 'print("hello")'])
        group.wait('talker', timeout=30.0)
        group.restart('talker')
        group.wait('talker', timeout=30.0)
        assert group.log('talker').split() == ['hello', 'hello']


@pytest.mark.parametrize('yaml_value,fragment', [('respawn: 1', 'true or false'),
                                                 ('respawn_delay_s: -2', '>= 0')])
def test_bad_respawn_in_topology_is_rejected(tmp_path: Path, yaml_value: str,
                                             fragment: str) -> None:
    path = tmp_path / 'topology.yaml'
    path.write_text('nodes:\n  - {name: a, executable: b, role: edge, config: c, '
                    f'{yaml_value}}}\n')
    with pytest.raises(ConfigError, match=fragment):
        load_topology(path)


def test_shipped_topology_respawns_the_pipeline_nodes_not_the_recorder() -> None:
    nodes = {n.name: n for n in load_topology()}
    assert {n for n, e in nodes.items() if e.respawn} == {'source', 'gate', 'supernet',
                                                           'lifting'}
    assert respawn_arguments(nodes['supernet']) == {
        'respawn': True, 'respawn_delay': nodes['supernet'].respawn_delay_s,
        'respawn_max_retries': RESPAWN_MAX_RETRIES}
    assert respawn_arguments(nodes['recorder']) == {}


def test_pipeline_cli_rejects_a_bad_respawn_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert pipeline_main(['--respawn', '--respawn-max-per-minute', '0',
                          '--duration', '0.1']) == 2
    assert 'at least 1 restart per minute' in capsys.readouterr().out


class PipelineOutput:
    """The tool's stdout, read line by line in a thread (so the test never blocks on it)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.queue: queue.Queue[str] = queue.Queue()
        self.thread = threading.Thread(target=self.read, args=(proc,), daemon=True)
        self.thread.start()

    def read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.queue.put(line.rstrip('\n'))

    def drain(self) -> list[str]:
        while not self.queue.empty():
            self.lines.append(self.queue.get_nowait())
        return self.lines

    def rest(self, timeout_s: float = 10.0) -> list[str]:
        """Every line, once the tool has exited: the reader reaches the end of the pipe."""
        self.thread.join(timeout=timeout_s)
        return self.drain()

    def pids(self) -> dict[str, int]:
        """{node: pid} from the tool's 'started NODE (pid N)' lines."""
        return {m[1]: int(m[2]) for line in self.drain()
                if (m := re.fullmatch(r'started (\w+) \(pid (\d+)\)', line))}


def ignore_sigint() -> None:
    """Start the tool as a background job of a non-interactive shell does: SIGINT ignored
    (Python then raises no KeyboardInterrupt; Ctrl-C must still stop the graph)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.ros
def test_killed_supernet_is_restarted_and_detections_come_back(
        tmp_path: Path, ros_env: dict[str, str], rclpy_context: Any) -> None:
    import rclpy
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    from neulens_ros.nodes.common import make_qos, time_to_ns

    node = rclpy.create_node('respawn_listener', context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    stamps: list[tuple[float, int]] = []  # (arrival, frame stamp in ns)
    node.create_subscription(Detection2DArray, '/rsp/neulens/detections_2d',
                             lambda m: stamps.append((time.monotonic(),
                                                      time_to_ns(m.header.stamp))),
                             make_qos('reliable', 50))
    arrivals_3d: list[float] = []
    node.create_subscription(Detection3DArray, '/rsp/neulens/detections_3d',
                             lambda m: arrivals_3d.append(time.monotonic()),
                             make_qos('reliable', 50))

    def spin_until(done: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
            if done():
                return True
        return False

    cmd = [sys.executable, '-m', 'neulens_ros.tools.pipeline', '--respawn',
           '--respawn-delay', '0.5', '--namespace', 'rsp', '--log-dir', str(tmp_path / 'logs'),
           '--duration', '240', '--set', 'source.rate_hz=4', '--set', 'source.preload_frames=4',
           '--set', 'supernet.stale_after_ms=0']
    tool = subprocess.Popen(cmd, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, preexec_fn=ignore_sigint)
    output = PipelineOutput(tool)
    try:
        assert spin_until(lambda: len(stamps) >= 3, timeout=150.0), output.drain()
        pids = output.pids()
        assert set(pids) == {'source', 'gate', 'supernet', 'lifting'}, output.lines
        killed_at = time.monotonic()
        os.kill(pids['supernet'], signal.SIGKILL)
        # 2D from the restarted supernet, and 3D lifted from it, within 10 s of the kill
        back = spin_until(lambda: any(t > killed_at + 0.5 for t, _ in stamps)
                          and any(t > killed_at + 0.5 for t in arrivals_3d),
                          timeout=10.0)
        came_back_s = min(t for t, _ in stamps if t > killed_at + 0.5) - killed_at \
            if back else float('nan')
        came_back_3d_s = min(t for t in arrivals_3d if t > killed_at + 0.5) - killed_at \
            if back else float('nan')
        lines = output.drain()
        logs = (tmp_path / 'logs' / 'supernet.log').read_text(errors='replace')[-2000:]
        assert back, (lines, logs)
        (restart,) = [line for line in lines if line.startswith('respawn: supernet died')]
        assert 'signal SIGKILL' in restart and 'restart 1,' in restart, restart
        new_pid = int(re.search(r'pid (\d+)', restart)[1])
        assert new_pid != pids['supernet'] and alive(new_pid)
        # the other nodes kept their processes, and nothing else was restarted
        assert all(alive(pid) for name, pid in pids.items() if name != 'supernet')
        assert [line for line in lines if line.startswith('respawn:')] == [restart]
        print(f'2D detections back {came_back_s:.1f} s and 3D {came_back_3d_s:.1f} s after '
              'SIGKILL of the supernet')
    finally:
        if tool.poll() is None:
            os.kill(tool.pid, signal.SIGINT)
        try:
            tool.wait(timeout=40.0)
        except subprocess.TimeoutExpired:
            os.kill(tool.pid, signal.SIGKILL)
            tool.wait()
    summary = output.rest()  # the last lines may still be in the pipe when the tool exits
    assert 'supernet: exit code 0 (restarted 1 times)' in summary, summary
