"""recorder_node: record topics to a rosbag2 MCAP (or sqlite3) file without ros2cli/rosbag2.

Subscribes to each configured topic in raw mode (the CDR bytes are stored untouched, exactly
what `ros2 bag record` stores), with a best-effort QoS that accepts reliable and best-effort
publishers alike. Topic types are given as 'topic:pkg/msg/Type' or discovered from the graph.
The bag is finished (metadata written) on shutdown, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import importlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.subscription import Subscription

from neulens_ros.bag.writer import BagWriter
from neulens_ros.errors import ConfigError
from neulens_ros.nodes.common import make_qos, qos_specs, run, subscription_events
from neulens_ros.nodes.params import ParamSpec, declare_parameters
from neulens_ros.nodes.stop import StopRequest

DEFAULT_TOPICS = [
    'camera/color/image_raw', 'camera/color/camera_info', 'camera/depth/image_raw',
    'neulens/tile_decision', 'neulens/tile_batch', 'neulens/detections_2d',
    'neulens/detections_3d', 'neulens/stage_timing',
]

PARAMS = [
    ParamSpec('topics', DEFAULT_TOPICS, "Topics to record, each 'name' (type discovered) or "
              "'name:pkg/msg/Type'; relative names resolve in the node's namespace",
              read_only=True, item_type=str),
    ParamSpec('output_dir', 'bags', 'Folder that receives the bag folder', read_only=True),
    ParamSpec('bag_name', '', "Bag folder name ('' = neulens_<date>_<time>)", read_only=True),
    ParamSpec('storage', 'mcap', 'rosbag2 storage format', read_only=True,
              choices=('mcap', 'sqlite3')),
    ParamSpec('max_duration_s', 0.0, 'Stop recording after this long (0 = until shutdown)',
              minimum=0.0, maximum=86400.0, units='s'),
    *qos_specs(default='best_effort', depth=100),
]


def message_class(msgtype: str) -> Any:
    """The Python class of 'pkg/msg/Type'."""
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def parse_topic(entry: str) -> tuple[str, str]:
    """'name' or 'name:pkg/msg/Type' -> (name, type or '')."""
    name, _, msgtype = entry.partition(':')
    if not name or (msgtype and msgtype.count('/') != 2):
        raise ConfigError(f"topic entry {entry!r} must be 'name' or 'name:pkg/msg/Type'")
    return name, msgtype


class RecorderNode(Node):
    """Records topics into one bag until shutdown."""

    bag: BagWriter | None = None  # also when the constructor failed before opening it

    def __init__(self) -> None:
        super().__init__('recorder')
        self.params = declare_parameters(self, PARAMS)
        values = self.params.values
        wanted = [parse_topic(t) for t in values['topics']]
        name = values['bag_name'] or datetime.now().strftime('neulens_%Y%m%d_%H%M%S')
        self.bag_path = Path(values['output_dir']).expanduser() / name
        self.bag = BagWriter(self.bag_path, storage=values['storage'])
        self.qos = make_qos(values['qos_profile'], values['qos_depth'])
        self.pending: dict[str, str] = {}
        self.subs: list[Subscription] = []
        for topic, msgtype in wanted:
            resolved = self.resolve_topic_name(topic)
            self.pending[resolved] = msgtype
        self.started = time.monotonic()
        self.subscribe_known()
        self.timer = self.create_timer(0.2, self.on_timer)
        self.get_logger().info(f'recording {len(self.pending)} topics to {self.bag_path}')

    def subscribe_known(self) -> None:
        """Subscribe to every pending topic whose type is known (given or discovered)."""
        graph = dict(self.get_topic_names_and_types())
        for topic, msgtype in list(self.pending.items()):
            types = graph.get(topic, [])
            if not msgtype and len(types) == 1:
                msgtype = types[0]
            if not msgtype:
                continue
            self.bag.add_topic(topic, msgtype)
            self.subs.append(self.create_subscription(
                message_class(msgtype), topic, self.make_callback(topic), self.qos, raw=True,
                event_callbacks=subscription_events(self, topic)))
            del self.pending[topic]
            self.get_logger().info(f'recording {topic} [{msgtype}]')

    def make_callback(self, topic: str):  # noqa: ANN201 - rclpy callback
        def callback(data: bytes) -> None:
            if self.bag is not None:
                self.bag.write(topic, self.get_clock().now().nanoseconds, data)
        return callback

    def on_timer(self) -> None:
        if self.pending:
            self.subscribe_known()
        limit = self.params.values['max_duration_s']
        if limit > 0 and time.monotonic() - self.started >= limit:
            self.get_logger().info(f'max_duration_s={limit} reached')
            self.finish()
            raise SystemExit(0)

    def finish(self) -> None:
        """Close the bag and log what it holds."""
        if self.bag is None:
            return
        self.bag.close()
        counts = ', '.join(f'{t}: {n}' for t, n in sorted(self.bag.counts.items()))
        self.get_logger().info(f'bag {self.bag_path} closed ({counts or "no messages"})')
        if self.pending:
            self.get_logger().warning('never saw a publisher for: ' + ', '.join(self.pending))
        self.bag = None

    def destroy_node(self) -> None:
        self.finish()
        super().destroy_node()


def main(args: list[str] | None = None, stop: StopRequest | None = None) -> int:
    return run(RecorderNode, args, stop)


if __name__ == '__main__':
    raise SystemExit(main())
