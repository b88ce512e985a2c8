"""Is the edge answering? The headset's view, from the replies to the frames it sends.

Every frame sent to the edge is answered by a StageTiming of the edge's stage (a result or a
drop). The edge is silent when a frame sent after the last reply has waited longer than the
expected reply time plus `timeout_s`; then only a probe frame now and then is sent, and the
first reply ends the outage. ROS-free; the clock is injectable (monotonic seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from neulens_ros.errors import ConfigError
from neulens_ros.nodes.window import Clock

WAITING = 'waiting'  # nothing heard from the edge yet
UNREACHABLE = 'unreachable'  # nothing heard yet, and the first frames went unanswered
OK = 'ok'
LOST = 'lost'  # heard before, silent now


@dataclass
class EdgeLiveness:
    timeout_s: float  # silence beyond the expected reply time that means the edge is gone
    probe_period_s: float  # while silent: one frame sent per this period
    clock: Clock = time.monotonic
    expected_reply_s: float = 0.0  # round trip of the recent replies
    heard_at: float | None = None  # the last reply
    unanswered_since: float | None = None  # the first frame sent after the last reply
    silent_since: float | None = None  # when the silence was detected
    probed_at: float = field(default=-float('inf'))

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError(f'edge_timeout_ms must be > 0, got {self.timeout_s * 1e3} ms')
        if self.probe_period_s <= 0:
            raise ConfigError(f'edge_probe_period_s must be > 0, got {self.probe_period_s} s')

    @property
    def state(self) -> str:
        if self.silent_since is None:
            return WAITING if self.heard_at is None else OK
        return UNREACHABLE if self.heard_at is None else LOST

    def may_send(self) -> bool:
        """True when the next frame should go out: always while the edge answers, one per
        probe period while it is silent."""
        return self.silent_since is None or self.clock() - self.probed_at >= self.probe_period_s

    def sent(self) -> None:
        now = self.clock()
        self.probed_at = now
        if self.unanswered_since is None:
            self.unanswered_since = now

    def replied(self, round_trip_s: float | None = None) -> float | None:
        """A reply arrived (with the recent mean round trip when known: the expected reply
        time from now on). Returns the length of the silence it ends (s, from the previous
        reply; 0 if never heard), else None."""
        now = self.clock()
        ended = None
        if self.silent_since is not None:
            ended = now - self.heard_at if self.heard_at is not None else 0.0
        if round_trip_s is not None:
            self.expected_reply_s = round_trip_s
        self.heard_at = now
        self.unanswered_since = None
        self.silent_since = None
        return ended

    def silent_for(self) -> float:
        """Seconds the oldest unanswered frame has waited (0 when none waits)."""
        if self.unanswered_since is None:
            return 0.0
        return self.clock() - self.unanswered_since

    def check(self) -> bool:
        """True when the edge has just become silent (call periodically)."""
        if self.silent_since is not None:
            return False
        if self.silent_for() > self.expected_reply_s + self.timeout_s:
            self.silent_since = self.clock()
            return True
        return False
