"""Restart node processes that die, like `launch`'s respawn=True (ROS-free).

A Respawner watches a ProcessGroup: a process of a respawnable node that ends abnormally
(non-zero exit code or a signal) is started again with the same command after its delay, at
most `max_per_minute` times in any 60 s; after that it stays down and the Respawner says so.
A process that exits with code 0 has finished its work (a source that reached num_frames) and
is not restarted. Every restart and every give-up is returned as one line of text for the
caller to print.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping

from neulens_ros.errors import ConfigError
from neulens_ros.launching import ProcessGroup

WINDOW_S = 60.0  # the window of the restart bound


@dataclass(frozen=True)
class RespawnPolicy:
    """How one node is restarted."""

    delay_s: float = 1.0  # s between the death and the restart
    max_per_minute: int = 5  # restarts allowed within any 60 s; then the node stays down

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ConfigError(f'respawn delay must be >= 0 s, got {self.delay_s}')
        if self.max_per_minute < 1:
            raise ConfigError(f'respawn bound must allow at least 1 restart per minute, got '
                              f'{self.max_per_minute}')


def describe_exit(code: int) -> str:
    """`-9` -> 'signal SIGKILL, exit code -9'; `3` -> 'exit code 3'."""
    if code < 0:
        try:
            return f'signal {signal.Signals(-code).name}, exit code {code}'
        except ValueError:
            return f'signal {-code}, exit code {code}'
    return f'exit code {code}'


@dataclass
class Respawner:
    """Restarts the group's processes named in `policies` when they die."""

    group: ProcessGroup
    policies: Mapping[str, RespawnPolicy]  # node name -> its policy (others are never restarted)
    clock: Callable[[], float] = time.monotonic
    restarts: dict[str, int] = field(default_factory=dict)  # node -> restarts so far
    _recent: dict[str, deque[float]] = field(default_factory=dict)  # node -> restart times
    _due: dict[str, tuple[float, int]] = field(default_factory=dict)  # node -> (when, code)
    _given_up: set[str] = field(default_factory=set)

    @property
    def pending(self) -> bool:
        """True while a restart is scheduled."""
        return bool(self._due)

    @property
    def given_up(self) -> frozenset[str]:
        """Nodes left down because they died too often."""
        return frozenset(self._given_up)

    def poll(self) -> list[str]:
        """Schedule restarts of the processes that died, start those that are due; one line
        per restart or give-up."""
        now = self.clock()
        lines = [line for name, code in self.group.exited().items()
                 if (line := self._on_exit(name, code, now))]
        for name, (when, code) in list(self._due.items()):
            if when <= now:
                del self._due[name]
                lines.append(self._restart(name, code, now))
        return lines

    def _on_exit(self, name: str, code: int, now: float) -> str:
        if (name not in self.policies or code == 0 or name in self._due
                or name in self._given_up):
            return ''
        recent = self._recent.setdefault(name, deque())
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        policy = self.policies[name]
        if len(recent) >= policy.max_per_minute:
            self._given_up.add(name)
            return (f'respawn: {name} died ({describe_exit(code)}) after {len(recent)} restarts '
                    f'within {WINDOW_S:.0f} s: not restarting it (bound '
                    f'{policy.max_per_minute} per minute)')
        self._due[name] = (now + policy.delay_s, code)
        return ''

    def _restart(self, name: str, code: int, now: float) -> str:
        proc = self.group.restart(name)
        self._recent[name].append(now)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        return (f'respawn: {name} died ({describe_exit(code)}), restarted as pid {proc.pid} '
                f'(restart {self.restarts[name]}, {len(self._recent[name])} in the last '
                f'{WINDOW_S:.0f} s)')
