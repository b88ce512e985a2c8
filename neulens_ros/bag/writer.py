"""Write serialized (CDR) ROS 2 messages to a rosbag2 folder (MCAP or sqlite3).

The bag opens in `ros2 bag info/play` on a full install and in third-party readers (rosbags,
mcap_ros2): every connection carries its full message definition and RIHS01 type hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.writer import Connection

from neulens_ros.bag.typestore import make_typestore
from neulens_ros.errors import ConfigError, DataError

Storage = Literal['mcap', 'sqlite3']


@dataclass
class BagWriter:
    """A rosbag2 being written: add topics, then write CDR bytes with receive times (ns)."""

    path: Path
    storage: Storage = 'mcap'
    _writer: Writer | None = field(default=None, init=False, repr=False)
    _connections: dict[str, Connection] = field(default_factory=dict, init=False, repr=False)
    counts: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.storage not in ('mcap', 'sqlite3'):
            raise ConfigError(f"bag storage must be 'mcap' or 'sqlite3', got {self.storage!r}")
        self.path = Path(self.path)
        if self.path.exists():
            raise DataError(f'bag {self.path} already exists: choose a new path (a rosbag2 is '
                            'a folder and is never overwritten)')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if self.storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare `topic` with type 'pkg/msg/Name' (definitions come from the installed
        packages). Adding the same topic twice with the same type is a no-op."""
        known = self._connections.get(topic)
        if known is not None:
            if known.msgtype != msgtype:
                raise DataError(f'{topic} was added as {known.msgtype}, now as {msgtype}')
            return
        store = make_typestore([msgtype])
        assert self._writer is not None
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=store)
        self.counts[topic] = 0

    def write(self, topic: str, stamp_ns: int, data: bytes | memoryview) -> None:
        """Append one serialized message received at `stamp_ns` (nanoseconds)."""
        if self._writer is None:
            raise DataError(f'bag {self.path} is closed')
        connection = self._connections.get(topic)
        if connection is None:
            raise DataError(f'topic {topic} was not added to bag {self.path}')
        self._writer.write(connection, int(stamp_ns), bytes(data))
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml). Safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
