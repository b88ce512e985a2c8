"""TwoHostLink: two network namespaces joined only by the emulated link.

    with TwoHostLink('average') as link:
        subprocess.run(link.exec_prefix('a') + ['ping', '-c', '3', link.ip_b])
        env = link.env_for('a')   # DDS settings for processes on side a

Creates namespaces and TAP devices with names unique to this process, a private /24 that
exists only inside them, and the bridge process; on exit (also on errors and Ctrl-C) it
stops the bridge by PID, deletes the namespaces and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from neulens_ros.errors import NeulensError
from neulens_ros.topology import config_dir, fastdds_profile_variable

SIDES = ('a', 'b')


class LinkError(NeulensError):
    """The namespaces or the bridge could not be set up or torn down."""


def run_ip(*args: str) -> None:
    result = subprocess.run(['ip', *args], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise LinkError(f'ip {" ".join(args)} failed: {result.stderr.strip()}')


def available() -> tuple[bool, str]:
    """Whether namespaces and TAP devices can be created here (root, iproute2, /dev/net/tun)."""
    if os.geteuid() != 0:
        return False, 'network namespaces need root'
    if shutil.which('ip') is None:
        return False, 'iproute2 (the ip command) is not installed'
    if not os.path.exists('/dev/net/tun'):
        return False, '/dev/net/tun is missing'
    probe = f'nlprobe{os.getpid() % 100000}'
    try:
        run_ip('netns', 'add', probe)
        run_ip('netns', 'del', probe)
    except LinkError as exc:
        return False, str(exc)
    return True, ''


class TwoHostLink:
    """Namespaces a and b, addresses 10.213.<n>.1 and .2, linked through the bridge."""

    def __init__(self, preset: str = 'average', stats_path: Path | None = None,
                 **overrides: float) -> None:
        tag = os.getpid() % 100000
        self.ns = {'a': f'neulens_a{tag}', 'b': f'neulens_b{tag}'}
        self.tap = {'a': f'nla{tag}', 'b': f'nlb{tag}'}
        subnet = 10 + tag % 240
        self.ip = {'a': f'10.213.{subnet}.1', 'b': f'10.213.{subnet}.2'}
        self.preset = preset
        self.overrides = overrides
        self.stats_path = stats_path
        self.bridge: subprocess.Popen | None = None

    @property
    def ip_a(self) -> str:
        return self.ip['a']

    @property
    def ip_b(self) -> str:
        return self.ip['b']

    def exec_prefix(self, side: str) -> list[str]:
        return ['ip', 'netns', 'exec', self.ns[side]]

    def env_for(self, side: str, headset: bool = False) -> dict[str, str]:
        """DDS across the link: the other side as static peer, UDP between the sides.

        `headset=True` (the side whose processes talk to each other at camera rate) keeps
        shared memory for its local traffic and paces only the tile batches; otherwise the
        side offers UDPv4 alone and paces every writer, so no shared memory is ever used
        across the link (the namespaces share /dev/shm).
        """
        peer = self.ip['b' if side == 'a' else 'a']
        profile = 'fastdds_link_headset.xml' if headset else 'fastdds_link.xml'
        env = {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'ROS_STATIC_PEERS': peer,
               fastdds_profile_variable(): str(config_dir() / profile),
               'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}
        if not headset:
            env['FASTDDS_BUILTIN_TRANSPORTS'] = 'UDPv4'
        return env

    def __enter__(self) -> 'TwoHostLink':
        try:
            for side in SIDES:
                run_ip('netns', 'add', self.ns[side])
                run_ip('-n', self.ns[side], 'link', 'set', 'lo', 'up')
            cmd = [sys.executable, '-m', 'neulens_ros.link.bridge', '--tap-a', self.tap['a'],
                   '--tap-b', self.tap['b'], '--preset', self.preset]
            for key, value in self.overrides.items():
                cmd += [f'--{key.replace("_", "-")}', str(value)]
            if self.stats_path is not None:
                cmd += ['--stats', str(self.stats_path)]
            self.bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            if self.bridge.stdout.readline().strip() != 'ready':
                raise LinkError('the link bridge did not start (see its error output)')
            for side in SIDES:
                run_ip('link', 'set', self.tap[side], 'netns', self.ns[side])
                run_ip('-n', self.ns[side], 'addr', 'add', f'{self.ip[side]}/24', 'dev',
                       self.tap[side])
                run_ip('-n', self.ns[side], 'link', 'set', self.tap[side], 'up')
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bridge (by PID), delete both namespaces; idempotent."""
        if self.bridge is not None and self.bridge.poll() is None:
            self.bridge.terminate()
            try:
                self.bridge.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.bridge.kill()
                self.bridge.wait(timeout=5)
        for side in SIDES:
            subprocess.run(['ip', 'netns', 'del', self.ns[side]], capture_output=True,
                           timeout=20)
        left = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True,
                              timeout=20).stdout
        if any(name in left for name in self.ns.values()):
            raise LinkError(f'namespaces left behind: {left.strip()}')

    def stats(self) -> dict[str, Any]:
        if self.stats_path is None or not self.stats_path.is_file():
            return {}
        return json.loads(self.stats_path.read_text())
