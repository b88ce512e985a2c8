"""Read a rosbag2 (MCAP or sqlite3) recorded by the recorder node or by `ros2 bag record`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from rosbags.highlevel import AnyReader

from neulens_ros.errors import DataError


@dataclass(frozen=True)
class BagMessage:
    """One deserialized message."""

    topic: str
    msgtype: str  # 'pkg/msg/Type'
    log_time_ns: int  # when the recorder received it, nanoseconds
    msg: Any  # rosbags dataclass with the message's fields


def _open(path: Path) -> AnyReader:
    path = Path(path)
    if not (path / 'metadata.yaml').is_file():
        raise DataError(f'{path} is not a finished rosbag2 folder (no metadata.yaml): was the '
                        'recorder stopped cleanly?')
    return AnyReader([path])


def topic_types(path: Path) -> dict[str, str]:
    """{topic: msgtype} of every connection in the bag."""
    with _open(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def read_messages(path: Path, topics: Sequence[str] | None = None) -> Iterator[BagMessage]:
    """Messages of `topics` (all when None) in log-time order, deserialized.

    Types the bag defines are taken from the bag itself, so bags from other machines and
    versions read without the packages installed."""
    with _open(path) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:
            return
        for conn, stamp, data in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, stamp, reader.deserialize(
                data, conn.msgtype))


def message_counts(path: Path) -> Counter[str]:
    """{topic: number of messages}."""
    with _open(path) as reader:
        return Counter({c.topic: c.msgcount for c in reader.connections})
