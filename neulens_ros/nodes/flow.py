"""How many frames the gate has in the pipeline: flow control, so that no stage works on a frame
a later stage throws away.

Every frame the gate sends is answered, per stage, by a StageTiming (a result or a drop): the
edge's (`supernet`), then lifting's. A frame is in flight from being sent until the last stage
answers it. With at most `limit` frames in flight (2: one at a stage, one on its way or
waiting), the gate takes the next camera frame only when one leaves, so each stage finds a
frame ready when it gets free, and none is superseded there after the gate and the edge
worked on it. The last stage is the furthest one heard from recently: a pipeline without
lifting ends at the edge, and a stage that falls silent stops holding the gate (the edge's
silence is EdgeLiveness's). A frame also leaves when a stage before the last drops it, or
when the last answers a frame sent after it (a frame lost on the way is never answered), or
when it has been in flight longer than the last stage's recent reply time plus `timeout_s`.
ROS-free; the clock is injectable (monotonic seconds).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from neulens_ros.errors import ConfigError
from neulens_ros.nodes.window import Clock

STAGES = ('supernet', 'lifting')  # the stages after the gate, in pipeline order
REPLY_SMOOTHING = 0.2  # weight of the newest reply time in a stage's recent reply time


class FrameFlow:
    """Frames sent and not yet answered by the last stage, by camera stamp."""

    def __init__(self, limit: int, timeout_s: float, stages: tuple[str, ...] = STAGES,
                 clock: Clock = time.monotonic) -> None:
        if limit < 0:
            raise ConfigError(f'max_frames_in_flight must be >= 0 (0 = no limit), got {limit}')
        if timeout_s <= 0:
            raise ConfigError(f'the flow timeout must be > 0 s, got {timeout_s}')
        if not stages or len(set(stages)) != len(stages):
            raise ConfigError(f'flow stages must be distinct and at least one, got {stages}')
        self.limit = limit
        self.timeout_s = timeout_s
        self.stages = stages
        self.clock = clock
        self.sent_at: OrderedDict[int, float] = OrderedDict()  # stamp ns -> clock, oldest first
        self.heard_at: dict[str, float] = {}  # stage -> its last reply
        self.reply_s: dict[str, float] = {}  # stage -> recent time from sending to its reply

    def sent(self, stamp_ns: int) -> None:
        self.sent_at[stamp_ns] = self.clock()

    def limit_s(self, stage: str) -> float:
        """How long a frame may wait for `stage`'s reply: its recent reply time + timeout."""
        return self.reply_s.get(stage, 0.0) + self.timeout_s

    def last_stage(self) -> str | None:
        """The furthest stage that replied within its limit_s (None: none did)."""
        now = self.clock()
        return next((s for s in reversed(self.stages) if s in self.heard_at
                     and now - self.heard_at[s] <= self.limit_s(s)), None)

    def replied(self, stage: str, stamp_ns: int, dropped: bool) -> None:
        """A stage's StageTiming for the frame stamped `stamp_ns` (a result or a drop)."""
        if stage not in self.stages:
            return
        now = self.clock()
        self.heard_at[stage] = now
        sent = self.sent_at.get(stamp_ns)
        if sent is not None:
            previous = self.reply_s.get(stage, now - sent)
            self.reply_s[stage] = previous + REPLY_SMOOTHING * (now - sent - previous)
        if stage == self.last_stage():
            self.answered_through(stamp_ns)
        elif dropped:
            self.sent_at.pop(stamp_ns, None)

    def answered_through(self, stamp_ns: int) -> None:
        """The last stage answered the frame stamped `stamp_ns`: it and every frame sent before
        it are out of flight (the stages take frames in order, so an earlier one was
        answered or lost). A frame not in flight ends those stamped up to it (after a
        restarted stream the stamps start again lower, and the old ones expire)."""
        if stamp_ns in self.sent_at:
            while self.sent_at.popitem(last=False)[0] != stamp_ns:
                pass
            return
        while self.sent_at and next(iter(self.sent_at)) <= stamp_ns:
            self.sent_at.popitem(last=False)

    def in_flight(self) -> int:
        """Frames in flight, after letting go of those waiting longer than the last stage's
        limit_s."""
        stage = self.last_stage()
        if stage is None:
            self.sent_at.clear()
            return 0
        oldest = self.clock() - self.limit_s(stage)
        while self.sent_at and next(iter(self.sent_at.values())) < oldest:
            self.sent_at.popitem(last=False)
        return len(self.sent_at)

    def full(self) -> bool:
        """True while `limit` frames are in flight (never with limit 0, nor before any stage
        replied: the pipeline's pace is unknown then)."""
        return self.limit > 0 and self.in_flight() >= self.limit
