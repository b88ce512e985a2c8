"""Node status on /diagnostics (diagnostic_msgs/DiagnosticArray), the ROS-standard channel
that rqt_runtime_monitor and diagnostic aggregators read.

A status describes the present: rates and problem counts over the last `status_window_s`
seconds (totals since start are separate keys), and a level that returns to OK once the
problems stop."""

from __future__ import annotations

from typing import Any, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from neulens_ros.nodes.params import ParamSpec

LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
          'error': DiagnosticStatus.ERROR}

STATUS_WINDOW = ParamSpec('status_window_s', 10.0, 'The recent past the status describes '
                          '(rates, recent problem counts, the level) and the shortest interval '
                          'between two log lines of one problem', read_only=True, minimum=1.0,
                          maximum=600.0, units='s')


def worst(*levels: str) -> str:
    """The most severe of `levels` ('ok', 'warn', 'error')."""
    return max(levels, key=lambda level: LEVELS[level])


class StatusPublisher:
    """Publishes one DiagnosticStatus per call: a level, a message and key/values."""

    def __init__(self, node: Node, topic: str = '/diagnostics') -> None:
        self.node = node
        self.pub = node.create_publisher(DiagnosticArray, topic, 10)

    def publish(self, level: str, message: str, values: Mapping[str, Any]) -> DiagnosticArray:
        status = DiagnosticStatus(level=LEVELS[level], name=self.node.get_fully_qualified_name(),
                                  message=message, hardware_id='neulens_ros')
        status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)
        return msg
