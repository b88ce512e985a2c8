"""Approximate-time matching of several message streams by header stamp (ROS-free).

The lifting node pairs each Detection2DArray with the depth image and CameraInfo of the same
camera frame. Detections arrive hundreds of milliseconds after their frame, so the matcher
keeps a bounded, time-ordered queue per stream and emits a set as soon as every stream has a
message within `slop` of the pivot stream's message; older unmatched messages are dropped and
counted. This is the matching message_filters' ApproximateTimeSynchronizer does, written here
because message_filters is not available in pip-only installs; one tested implementation
serves both kinds of install.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from neulens_ros.errors import ConfigError

T = TypeVar('T')


@dataclass
class StampQueue(Generic[T]):
    """Messages of one stream sorted by stamp (nanoseconds), at most `size` of them."""

    size: int
    stamps: list[int] = field(default_factory=list)
    items: list[T] = field(default_factory=list)
    overflow: int = 0

    def add(self, stamp_ns: int, item: T) -> None:
        i = bisect.bisect_right(self.stamps, stamp_ns)
        self.stamps.insert(i, stamp_ns)
        self.items.insert(i, item)
        if len(self.stamps) > self.size:
            del self.stamps[0], self.items[0]
            self.overflow += 1

    def nearest(self, stamp_ns: int) -> int | None:
        """Index of the message closest in time to `stamp_ns` (None when empty)."""
        if not self.stamps:
            return None
        i = bisect.bisect_left(self.stamps, stamp_ns)
        candidates = [j for j in (i - 1, i) if 0 <= j < len(self.stamps)]
        return min(candidates, key=lambda j: abs(self.stamps[j] - stamp_ns))

    def drop_through(self, index: int) -> int:
        """Remove messages 0..index; returns how many were removed."""
        del self.stamps[:index + 1], self.items[:index + 1]
        return index + 1


@dataclass
class ApproximateTimeMatcher:
    """Match one message of each of `streams` whose stamps lie within `slop_ns` of the pivot.

    The pivot stream (the first) drives matching: each pivot message is matched with the
    nearest message of every other stream; it waits (up to `size` newer pivot messages) while
    a stream has nothing close enough yet.
    """

    streams: tuple[str, ...]
    slop_ns: int
    size: int = 30
    queues: dict[str, StampQueue[Any]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.streams) < 2 or len(set(self.streams)) != len(self.streams):
            raise ConfigError(f'need >= 2 distinct streams to match, got {self.streams}')
        if self.slop_ns < 0 or self.size < 1:
            raise ConfigError(f'slop must be >= 0 and queue size >= 1, got {self.slop_ns} ns, '
                              f'{self.size}')
        self.queues = {s: StampQueue(self.size) for s in self.streams}
        self.dropped = {s: 0 for s in self.streams}

    def add(self, stream: str, stamp_ns: int, item: Any) -> list[dict[str, Any]]:
        """Add one message; returns the sets ({stream: item}) completed by it, oldest first."""
        if stream not in self.queues:
            raise ConfigError(f'unknown stream {stream!r}; streams are {self.streams}')
        self.queues[stream].add(stamp_ns, item)
        matches = []
        while (match := self._match_oldest_pivot()) is not None:
            matches.append(match)
        return matches

    def _match_oldest_pivot(self) -> dict[str, Any] | None:
        pivot = self.queues[self.streams[0]]
        while pivot.stamps:
            stamp = pivot.stamps[0]
            picks: dict[str, int] = {}
            for name in self.streams[1:]:
                queue = self.queues[name]
                j = queue.nearest(stamp)
                if j is None or abs(queue.stamps[j] - stamp) > self.slop_ns:
                    newest = queue.stamps[-1] if queue.stamps else None
                    if newest is not None and newest > stamp + self.slop_ns:
                        # That stream has moved past this pivot: it will never match.
                        self.dropped[self.streams[0]] += pivot.drop_through(0)
                        break
                    return None  # wait for more messages
                picks[name] = j
            else:
                match = {self.streams[0]: pivot.items[0]}
                pivot.drop_through(0)
                for name, j in picks.items():
                    match[name] = self.queues[name].items[j]
                    # Messages older than the used one can no longer match a later pivot.
                    self.dropped[name] += self.queues[name].drop_through(j) - 1
                return match
        return None
