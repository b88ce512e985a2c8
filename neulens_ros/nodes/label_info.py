"""The detector's class map as vision_msgs/LabelInfo on a transient-local topic.

vision_msgs recommends publishing LabelInfo once, with transient-local durability, so that a
subscriber that joins later (with transient-local durability too) still receives it; the
supernet node publishes it again whenever it loads a checkpoint or its score threshold changes.
"""

from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo

from neulens_ros.bridge.detections import label_info
from neulens_ros.models.labels import ClassLabels
from neulens_ros.nodes.common import make_qos
from neulens_ros.nodes.params import ParamSpec

LABEL_INFO_TOPIC = ParamSpec('label_info_topic', 'neulens/label_info', "vision_msgs/LabelInfo "
                             "topic (transient local): the detector's class ids and names",
                             read_only=True)


class LabelInfoPublisher:
    """Publishes the class map of the loaded detector (the last one stays for late joiners)."""

    def __init__(self, node: Node, topic: str) -> None:
        self.node = node
        self.publisher = node.create_publisher(LabelInfo, topic,
                                               make_qos('reliable_transient_local', 1))
        self.labels: ClassLabels | None = None

    def publish(self, labels: ClassLabels | None, threshold: float) -> None:
        """Publish `labels` (None: the last ones again, e.g. for a new threshold)."""
        self.labels = labels or self.labels
        if self.labels is None:
            return
        header = Header(stamp=self.node.get_clock().now().to_msg())
        self.publisher.publish(label_info(header, self.labels.ids, self.labels.names,
                                          threshold))
