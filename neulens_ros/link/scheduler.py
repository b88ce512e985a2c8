"""One direction of an emulated link: serialisation at a rate, propagation delay (+ jitter
without reordering), Bernoulli loss and tail drop at a bounded queue.

Pure and clock-agnostic (times are seconds given by the caller), so it is tested with a fake
clock and driven by the bridge process with the monotonic clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from neulens_ros.errors import ConfigError


@dataclass(frozen=True)
class LinkConfig:
    """One direction of a link (both directions use the same config)."""

    rate_mbps: float  # serialisation rate, megabits per second
    delay_ms: float  # one-way propagation delay, milliseconds
    loss: float = 0.0  # probability that a frame is dropped, 0..1
    jitter_ms: float = 0.0  # uniform extra delay 0..jitter (order is kept)
    queue_bytes: int = 256 * 1024  # frames beyond this backlog are dropped (tail drop)

    def __post_init__(self) -> None:
        problems = []
        if self.rate_mbps <= 0:
            problems.append('rate_mbps must be > 0')
        if self.delay_ms < 0 or self.jitter_ms < 0:
            problems.append('delay_ms and jitter_ms must be >= 0')
        if not 0.0 <= self.loss < 1.0:
            problems.append('loss must be in [0, 1)')
        if self.queue_bytes < 1600:
            problems.append('queue_bytes must hold at least one Ethernet frame (1600)')
        if problems:
            raise ConfigError('invalid LinkConfig: ' + '; '.join(problems))


# Typical 802.11 links between a headset and an edge box (application-level throughput,
# not PHY rate): 'good' = 5 GHz, close to the access point; 'average' = a busy office
# network; 'poor' = far from the access point, through walls, with retransmission losses.
PRESETS = {
    'good': LinkConfig(rate_mbps=50.0, delay_ms=3.0, loss=0.0, jitter_ms=1.0),
    'average': LinkConfig(rate_mbps=20.0, delay_ms=10.0, loss=0.005, jitter_ms=3.0),
    'poor': LinkConfig(rate_mbps=8.0, delay_ms=30.0, loss=0.02, jitter_ms=10.0),
}


@dataclass
class DirectionScheduler:
    """Frames offered at `now` come out of `due(now)` when the link would deliver them."""

    config: LinkConfig
    seed: int = 0
    _queue: deque[tuple[float, bytes]] = field(default_factory=deque, init=False)
    _link_free_at: float = field(default=0.0, init=False)  # when serialisation is idle
    _last_release: float = field(default=0.0, init=False)
    _rng: np.random.Generator = field(init=False)
    stats: dict[str, int] = field(default_factory=lambda: {
        'offered': 0, 'delivered': 0, 'lost': 0, 'queue_drops': 0, 'bytes': 0}, init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def offer(self, frame: bytes, now: float) -> bool:
        """Accept a frame; False when it is dropped (loss or full queue)."""
        self.stats['offered'] += 1
        if self.backlog_bytes(now) + len(frame) > self.config.queue_bytes:
            self.stats['queue_drops'] += 1
            return False
        if self.config.loss and self._rng.random() < self.config.loss:
            self.stats['lost'] += 1
            return False
        start = max(now, self._link_free_at)
        self._link_free_at = start + 8.0 * len(frame) / (self.config.rate_mbps * 1e6)
        jitter = self._rng.uniform(0, self.config.jitter_ms) if self.config.jitter_ms else 0.0
        release = self._link_free_at + (self.config.delay_ms + jitter) / 1e3
        release = max(release, self._last_release)  # jitter never reorders
        self._last_release = release
        self._queue.append((release, frame))
        return True

    def backlog_bytes(self, now: float) -> float:
        """Bytes waiting for serialisation (the router buffer the queue limit bounds)."""
        return max(0.0, self._link_free_at - now) * self.config.rate_mbps * 1e6 / 8.0

    def due(self, now: float) -> list[bytes]:
        """Frames whose delivery time has come, in order."""
        out = []
        while self._queue and self._queue[0][0] <= now:
            _, frame = self._queue.popleft()
            out.append(frame)
            self.stats['delivered'] += 1
            self.stats['bytes'] += len(frame)
        return out

    def next_release(self) -> float | None:
        """When the next frame is due (None when nothing is in flight)."""
        return self._queue[0][0] if self._queue else None
