"""Bag writing and reading without ROS tools: round trips, both storages, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcap_ros2.reader import read_ros2_messages
from neulens_msgs.msg import StageTiming
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from neulens_ros.bag.reader import message_counts, read_messages, topic_types
from neulens_ros.bag.writer import BagWriter
from neulens_ros.bridge.detections import boxes_to_detection2d_array
from neulens_ros.errors import ConfigError, DataError


def write_sample(path: Path, storage: str) -> None:
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic('/timing', 'neulens_msgs/msg/StageTiming')
        bag.add_topic('/dets', 'vision_msgs/msg/Detection2DArray')
        for i in range(3):
            bag.write('/timing', 1000 + i, serialize_message(
                StageTiming(stage='gate', bytes_in=i, bytes_out=10 * i)))
        header = Header(frame_id='cam')
        bag.write('/dets', 2000, serialize_message(boxes_to_detection2d_array(
            header, [[10.0, 20.0, 50.0, 80.0]], [3], [0.75])))


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_round_trip(tmp_path: Path, storage: str) -> None:
    bag = tmp_path / 'bag'
    write_sample(bag, storage)
    assert message_counts(bag) == {'/timing': 3, '/dets': 1}
    assert topic_types(bag)['/dets'] == 'vision_msgs/msg/Detection2DArray'
    msgs = list(read_messages(bag))
    assert [m.log_time_ns for m in msgs] == [1000, 1001, 1002, 2000]
    assert [m.msg.bytes_out for m in msgs[:3]] == [0, 10, 20]
    det = msgs[3].msg.detections[0]
    assert det.bbox.center.position.x == pytest.approx(30.0)
    assert det.results[0].hypothesis.class_id == '3'


def test_mcap_opens_in_third_party_reader(tmp_path: Path) -> None:
    bag = tmp_path / 'bag'
    write_sample(bag, 'mcap')
    (mcap_file,) = bag.glob('*.mcap')
    stages = [m.ros_msg.stage for m in read_ros2_messages(str(mcap_file))
              if m.channel.topic == '/timing']
    assert stages == ['gate'] * 3


def test_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='mcap'):
        BagWriter(tmp_path / 'x', storage='rosbag1')  # type: ignore[arg-type]
    bag = BagWriter(tmp_path / 'b')
    with pytest.raises(DataError, match='not added'):
        bag.write('/nope', 0, b'')
    bag.add_topic('/t', 'neulens_msgs/msg/StageTiming')
    with pytest.raises(DataError, match='was added as'):
        bag.add_topic('/t', 'neulens_msgs/msg/TileBatch')
    with pytest.raises(DataError, match='not installed'):
        bag.add_topic('/u', 'no_such_pkg/msg/Thing')
    bag.close()
    with pytest.raises(DataError, match='closed'):
        bag.write('/t', 0, b'')
    with pytest.raises(DataError, match='already exists'):
        BagWriter(tmp_path / 'b')


def test_reader_rejects_unfinished_bag(tmp_path: Path) -> None:
    (tmp_path / 'half').mkdir()
    with pytest.raises(DataError, match='metadata.yaml'):
        message_counts(tmp_path / 'half')
