"""Publishing StageTiming: one message per stage per frame, joined by the frame stamp."""

from __future__ import annotations

from neulens_msgs.msg import StageTiming
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.time import Time
from std_msgs.msg import Header

from neulens_ros.nodes.common import time_to_ns
from neulens_ros.nodes.params import ParamSpec
from neulens_ros.report.node_logs import timing_line

# Timing is small and must not be lost: reliable, deep history.
TIMING_QOS = QoSProfile(depth=200, history=QoSHistoryPolicy.KEEP_LAST,
                        reliability=QoSReliabilityPolicy.RELIABLE,
                        durability=QoSDurabilityPolicy.VOLATILE)


LOG_TIMING = ParamSpec('log_timing', False, 'Also log every StageTiming this node publishes '
                       '(one line per frame; neulens-demo checks its report against them)')


class StageTimingPublisher:
    """Publishes the StageTiming of one stage of one node, and logs it while the node's
    live log_timing parameter (LOG_TIMING, when the node declares it) is true."""

    def __init__(self, node: Node, topic: str, stage: str) -> None:
        self.node = node
        self.stage = stage
        self.pub = node.create_publisher(StageTiming, topic, TIMING_QOS)

    def publish(self, header: Header, start: Time, end: Time, bytes_in: int, bytes_out: int,
                dropped: bool = False, reason: str = '') -> StageTiming:
        msg = StageTiming(header=header, stage=self.stage,
                          node=self.node.get_fully_qualified_name(), start=start.to_msg(),
                          end=end.to_msg(), bytes_in=int(bytes_in), bytes_out=int(bytes_out),
                          dropped=dropped, reason=reason)
        self.pub.publish(msg)
        if (self.node.has_parameter(LOG_TIMING.name)
                and self.node.get_parameter(LOG_TIMING.name).value):
            self.node.get_logger().info(timing_line(
                self.stage, time_to_ns(header.stamp),
                (end.nanoseconds - start.nanoseconds) / 1e6, dropped))
        return msg

    def publish_drop(self, header: Header, start: Time, bytes_in: int, reason: str
                     ) -> StageTiming:
        """The StageTiming of a frame this stage dropped (ending now), with the reason."""
        return self.publish(header, start, self.node.get_clock().now(), bytes_in, 0,
                            dropped=True, reason=reason)
