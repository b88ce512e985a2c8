"""Start the pipeline's nodes as separate OS processes without ROS 2 `launch` (ROS-free).

Each node runs as `python -m neulens_ros.nodes.entry <executable> --ros-args ...` with its config
file, namespace and overrides, exactly the arguments `ros2 launch` would pass. A ProcessGroup
stops what it started, by PID only: SIGINT first (nodes close bags and shut down cleanly),
then SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from neulens_ros.errors import ConfigError
from neulens_ros.resources import child_environment
from neulens_ros.topology import NodeEntry, config_dir, fastdds_profile_variable


def format_param(value: Any) -> str:
    """A parameter value as `-p name:=value` text (YAML syntax, as ros2 launch writes it)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(format_param(v) for v in value) + ']'
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'" if value == '' or ':' in value else value
    return repr(value)


def node_command(entry: NodeEntry, namespace: str = '',
                 overrides: Mapping[str, Any] | None = None,
                 python: str = sys.executable) -> list[str]:
    """The command line that starts `entry` (parameters: config file, then overrides)."""
    cmd = [python, '-m', 'neulens_ros.nodes.entry', entry.executable,
           '--ros-args', '-r', f'__node:={entry.name}']
    if namespace:
        if not namespace.startswith('/'):
            namespace = '/' + namespace
        cmd += ['-r', f'__ns:={namespace}']
    params_file = config_dir() / entry.config
    if not params_file.is_file():
        raise ConfigError(f'parameter file {params_file} of node {entry.name} does not exist')
    cmd += ['--params-file', str(params_file)]
    for name, value in (overrides or {}).items():
        cmd += ['-p', f'{name}:={format_param(value)}']
    return cmd


def dds_environment(domain_id: int | None = None, localhost_only: bool = True,
                    extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: the shipped Fast DDS profile (unless the user set
    one), localhost discovery and an optional domain id."""
    env = child_environment()
    env.setdefault(fastdds_profile_variable(), str(config_dir() / 'fastdds_local.xml'))
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if localhost_only:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    env['PYTHONUNBUFFERED'] = '1'
    # Nodes started together share the cores: one OpenMP thread per process avoids the
    # spin-waiting oversubscription that made the gate and supernet 8x slower in the demo on 2
    # cores (supernet_node's num_threads parameter still sets its own count).
    env.setdefault('OMP_NUM_THREADS', '1')
    env.update(extra or {})
    return env


@dataclass
class ProcessGroup:
    """Node processes started together and stopped together (by PID, never by name)."""

    env: Mapping[str, str]
    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)  # open log file per process
    _commands: dict[str, tuple[list[str], Path | None]] = field(default_factory=dict)

    def start(self, name: str, cmd: Sequence[str], cwd: Path | None = None) -> subprocess.Popen:
        if name in self.procs:
            raise ConfigError(f'a process named {name} is already running')
        self._commands[name] = (list(cmd), cwd)
        return self._spawn(name, append_log=False)

    def restart(self, name: str) -> subprocess.Popen:
        """Start an ended process again with the same command (its log is appended to)."""
        if name not in self._commands:
            raise ConfigError(f'no process named {name} was started')
        if self.procs[name].poll() is None:
            raise ConfigError(f'process {name} (pid {self.procs[name].pid}) is still running')
        return self._spawn(name, append_log=True)

    def _spawn(self, name: str, append_log: bool) -> subprocess.Popen:
        cmd, cwd = self._commands[name]
        out: Any = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if name in self._logs:
                self._logs.pop(name).close()
            out = open(self.log_dir / f'{name}.log',  # noqa: SIM115 - closed in stop()
                       'ab' if append_log else 'wb')
            self._logs[name] = out
        proc = subprocess.Popen(cmd, env=dict(self.env), cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT if out else None,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def exited(self) -> dict[str, int]:
        """Processes that have ended, with their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def log(self, name: str) -> str:
        """What the process has written so far ('' without a log folder)."""
        path = self.log_dir / f'{name}.log' if self.log_dir is not None else None
        return path.read_text(errors='replace') if path and path.is_file() else ''

    def wait(self, name: str, timeout: float) -> int | None:
        """Wait up to `timeout` s for one process; its exit code, or None if still running."""
        try:
            return self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = 10.0) -> dict[str, int]:
        """Stop every process: SIGINT, then SIGTERM and SIGKILL for the ones that linger."""
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 3.0),
                            (signal.SIGKILL, 3.0)):
            alive = [p for p in self.procs.values() if p.poll() is None]
            if not alive:
                break
            for proc in alive:
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            for proc in alive:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        return {n: p.returncode for n, p in self.procs.items()}

    def __enter__(self) -> 'ProcessGroup':
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
