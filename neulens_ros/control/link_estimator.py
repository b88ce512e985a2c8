"""Online estimate of the headset-to-edge link: round-trip time and bandwidth.

Each frame gives one sample without needing synchronised clocks: the gate knows when it sent
the TileBatch and how many bytes it carried; when the edge's reply for that frame arrives, the
round trip minus the edge's own processing time (a duration on the edge clock) is the network
time of the frame. Network time = rtt + 8 * bytes / bandwidth, so a least-squares line through
the recent (bytes, network time) samples gives both: the intercept is the round-trip time and
the slope the inverse bandwidth. While the samples do not spread enough in size to fit a slope,
the bandwidth stays at its prior (the `bandwidth_mbps` parameter or the last good fit).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from neulens_ros.errors import ConfigError


@dataclass(frozen=True)
class LinkState:
    """What DEMUX assumes about the link for the next frame."""

    bandwidth_mbps: float  # megabits per second; 0 = unknown (transmission term not applied)
    rtt_ms: float  # round-trip time of an empty message, milliseconds
    samples: int = 0  # samples behind the estimate

    def transmission_ms(self, payload_bytes: float) -> float:
        """Predicted time to get `payload_bytes` to the edge and the reply back, ms."""
        if self.bandwidth_mbps <= 0.0:
            return self.rtt_ms
        return self.rtt_ms + 8.0 * payload_bytes / (self.bandwidth_mbps * 1e3)


@dataclass
class LinkEstimator:
    """Sliding-window least-squares fit of network time against payload size."""

    window: int = 30  # samples kept
    prior_bandwidth_mbps: float = 0.0  # used until the samples support a slope; 0 = unknown
    min_spread_bytes: float = 20_000.0  # payload size spread (std) needed to fit a slope
    _bytes: deque[float] = field(default_factory=deque, init=False)
    _ms: deque[float] = field(default_factory=deque, init=False)
    _bandwidth: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ConfigError(f'link estimator window must be >= 2 samples, got {self.window}')
        if self.prior_bandwidth_mbps < 0.0 or self.min_spread_bytes <= 0.0:
            raise ConfigError('prior bandwidth must be >= 0 and the size spread > 0')
        self._bandwidth = self.prior_bandwidth_mbps

    def add(self, payload_bytes: float, round_trip_ms: float, edge_processing_ms: float) -> None:
        """One frame: bytes sent, reply time minus send time, edge processing duration."""
        network_ms = round_trip_ms - edge_processing_ms
        if payload_bytes < 0 or not np.isfinite(network_ms) or network_ms < 0.0:
            return  # clock step or a reply matched to the wrong frame: not a sample
        self._bytes.append(float(payload_bytes))
        self._ms.append(float(network_ms))
        while len(self._bytes) > self.window:
            self._bytes.popleft()
            self._ms.popleft()

    def state(self, bandwidth_override_mbps: float = 0.0) -> LinkState:
        """Current estimate; a positive override fixes the bandwidth (the parameter)."""
        n = len(self._ms)
        if n == 0:
            return LinkState(bandwidth_override_mbps or self._bandwidth, 0.0, 0)
        size = np.asarray(self._bytes)
        ms = np.asarray(self._ms)
        bandwidth = bandwidth_override_mbps or self._bandwidth
        if bandwidth_override_mbps <= 0.0 and n >= 3 and size.std() >= self.min_spread_bytes:
            slope, _ = np.polyfit(size, ms, 1)  # ms per byte
            if slope > 0.0:
                bandwidth = self._bandwidth = 8.0 / (slope * 1e3)
        if bandwidth > 0.0:
            rtt = float(np.median(ms - 8.0 * size / (bandwidth * 1e3)))
        else:
            rtt = float(ms.min())
        return LinkState(bandwidth, max(rtt, 0.0), n)
