"""Source and recorder in separate processes over real DDS: the bag has the expected topics,
types and counts, and opens with rosbags and with the mcap_ros2 reader; a walk's ground truth
keeps its track ids; a walk of the easy preset is refused at start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mcap_ros2.reader import read_ros2_messages

from neulens_ros.bag.reader import message_counts, read_messages, topic_types
from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.topology import load_topology

pytestmark = pytest.mark.ros

FRAMES = 5
EXPECTED = {
    '/rec/camera/color/image_raw': 'sensor_msgs/msg/Image',
    '/rec/camera/color/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/rec/camera/depth/image_raw': 'sensor_msgs/msg/Image',
    '/rec/ground_truth/detections_2d': 'vision_msgs/msg/Detection2DArray',
}


def test_source_to_recorder_bag(tmp_path: Path, ros_env: dict[str, str]) -> None:
    nodes = {n.name: n for n in load_topology()}
    topics = [f'{t.removeprefix("/rec/")}:{ty}' for t, ty in EXPECTED.items()]
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('recorder', node_command(nodes['recorder'], 'rec', {
            'output_dir': str(tmp_path), 'bag_name': 'bag', 'topics': topics,
            'qos_profile': 'reliable'}))
        group.start('source', node_command(nodes['source'], 'rec', {
            'num_frames': FRAMES, 'preload_frames': FRAMES, 'rate_hz': 5.0,
            'start_delay_s': 4.0, 'width': 320, 'height': 240, 'qos_profile': 'reliable'}))
        assert group.wait('source', timeout=120) == 0, \
            (tmp_path / 'logs' / 'source.log').read_text()[-2000:]
        codes = group.stop()
    assert codes['recorder'] == 0
    bag = tmp_path / 'bag'
    assert topic_types(bag) == EXPECTED
    assert dict(message_counts(bag)) == {t: FRAMES for t in EXPECTED}
    mcap_files = sorted(bag.glob('*.mcap'))
    assert len(mcap_files) == 1
    seen = [m.channel.topic for m in read_ros2_messages(str(mcap_files[0]))]
    assert sorted(set(seen)) == sorted(EXPECTED) and len(seen) == FRAMES * len(EXPECTED)


def test_walk_ground_truth_keeps_track_ids(tmp_path: Path, ros_env: dict[str, str]) -> None:
    nodes = {n.name: n for n in load_topology()}
    truth = 'ground_truth/detections_2d'
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('recorder', node_command(nodes['recorder'], 'walk', {
            'output_dir': str(tmp_path), 'bag_name': 'bag',
            'topics': [f'{truth}:vision_msgs/msg/Detection2DArray'], 'qos_profile': 'reliable'}))
        group.start('source', node_command(nodes['source'], 'walk', {
            'source': 'walk', 'preset': 'hard', 'seed': 2, 'num_frames': 3,
            'preload_frames': 3, 'rate_hz': 5.0, 'start_delay_s': 4.0, 'width': 320,
            'height': 240, 'qos_profile': 'reliable'}))
        assert group.wait('source', timeout=120) == 0, \
            (tmp_path / 'logs' / 'source.log').read_text()[-2000:]
        group.stop()
    frames = [{d.id for d in m.msg.detections} for m in read_messages(tmp_path / 'bag')]
    assert len(frames) == 3 and all(frames) and '' not in set.union(*frames)
    assert frames[0] & frames[1] & frames[2]  # the same objects, seen as the camera moves


def test_walk_of_the_easy_preset_is_refused(ros_env: dict[str, str]) -> None:
    (source,) = [e for e in load_topology() if e.name == 'source']
    cmd = node_command(source, 'walk', {'source': 'walk', 'preset': 'easy'})
    res = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and 'walks move through the rooms of the hard preset' in \
        res.stderr, res.stderr
    assert 'Traceback' not in res.stderr, res.stderr
