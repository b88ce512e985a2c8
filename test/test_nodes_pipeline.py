"""The whole graph in separate processes over real DDS (isolated domain, loopback):
source -> gate -> supernet -> lifting, checked frame by frame from a listener process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.topology import load_topology

pytestmark = pytest.mark.ros

FRAMES = 6


def start_graph(group: ProcessGroup, names: tuple[str, ...], overrides: dict,
                namespace: str) -> None:
    for node in load_topology():
        if node.name in names:
            group.start(node.name, node_command(node, namespace,
                                                overrides.get(node.name, {})))


class Listener:
    """Collects the graph's messages by frame stamp in this process."""

    def __init__(self, context: Any, namespace: str) -> None:
        import rclpy
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray, Detection3DArray

        from neulens_msgs.msg import TileBatch, TileDecision
        from neulens_ros.nodes.common import make_qos
        self.rclpy = rclpy
        self.node = rclpy.create_node('pipeline_listener', context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.got: dict[str, dict[int, Any]] = defaultdict(dict)
        reliable = make_qos('reliable', 50)
        for topic, kind, qos in (
                (f'/{namespace}/camera/color/image_raw', Image, qos_profile_sensor_data),
                (f'/{namespace}/neulens/tile_decision', TileDecision, qos_profile_sensor_data),
                (f'/{namespace}/neulens/tile_batch', TileBatch, qos_profile_sensor_data),
                (f'/{namespace}/neulens/detections_2d', Detection2DArray, reliable),
                (f'/{namespace}/neulens/detections_3d', Detection3DArray, reliable)):
            self.node.create_subscription(kind, topic, self.keeper(topic.split('/')[-1]), qos)

    def keeper(self, name: str):  # noqa: ANN201
        from neulens_ros.nodes.common import time_to_ns

        def keep(msg: Any) -> None:
            header = msg.decision.header if name == 'tile_batch' else msg.header
            self.got[name][time_to_ns(header.stamp)] = msg
        return keep

    def spin_until(self, done: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.1)
            if done():
                return True
        return False


def test_every_frame_flows_through_the_graph(tmp_path: Path, ros_env: dict[str, str],
                                             rclpy_context: Any) -> None:
    from neulens_ros.bridge.detections import (detection2d_array_to_boxes,
                                               detection3d_array_to_boxes)
    from neulens_ros.bridge.image import image_to_numpy
    from neulens_ros.bridge.tile_batch import unpack_tile_batch
    from neulens_ros.models.zoo import load_detector
    from neulens_ros.pipeline.edge import EdgeConfig, EdgeDetector
    from neulens_ros.data.resize import box_resize
    from neulens_ros.pipeline.tiles import crop_tiles

    listener = Listener(rclpy_context, 'pl')
    overrides = {  # no stage drops a frame for its age: every frame must come through
        'source': {'num_frames': FRAMES, 'preload_frames': FRAMES, 'rate_hz': 1.0,
                   'start_delay_s': 6.0, 'seed': 11, 'density': 'dense'},
        'gate': {'tile_encoding': 'png', 'latency_slo_ms': 0.0, 'stale_after_ms': 0.0},
        'supernet': {'stale_after_ms': 0.0, 'score_threshold': 0.3},
        'lifting': {'min_points': 10, 'stale_after_ms': 0.0},
    }
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        start_graph(group, ('source', 'gate', 'supernet', 'lifting'), overrides, 'pl')
        complete = listener.spin_until(
            lambda: len(listener.got['detections_3d']) >= FRAMES, timeout=150.0)
        codes = group.stop()
    logs = {p.name: p.read_text()[-1500:] for p in (tmp_path / 'logs').glob('*.log')}
    assert complete, f'only {dict((k, len(v)) for k, v in listener.got.items())}; {logs}'
    assert codes['source'] == 0, logs
    images = listener.got['image_raw']
    assert len(images) == FRAMES
    model, meta = load_detector()
    edge = EdgeDetector(model, EdgeConfig(score_threshold=0.3), meta)
    for stamp, image in images.items():
        decision_msg = listener.got['tile_decision'][stamp]
        batch = listener.got['tile_batch'][stamp]
        det2d = listener.got['detections_2d'][stamp]
        det3d = listener.got['detections_3d'][stamp]
        assert det2d.header.frame_id == image.header.frame_id == det3d.header.frame_id
        decision, tiles = unpack_tile_batch(batch)
        assert list(batch.tile_indices) == list(decision.sent_tiles)
        assert list(decision_msg.levels) == list(decision.levels)
        # the tiles are exactly the non-skipped crops of this frame's network input
        rgb = image_to_numpy(image, 'rgb8')
        expected = crop_tiles(box_resize(np.ascontiguousarray(rgb), decision.input_size),
                              decision.tile_rects, decision.sent_tiles)
        for index, tile in tiles.items():
            np.testing.assert_array_equal(tile, expected[index])
        # the edge's boxes are the detector's on those tiles, in original image pixels
        direct = edge.run(decision, tiles)
        boxes, classes, scores = detection2d_array_to_boxes(det2d)
        assert len(boxes) == len(direct.boxes)
        np.testing.assert_allclose(boxes, direct.boxes, atol=1e-3)
        np.testing.assert_array_equal(classes, direct.class_ids)
        assert boxes.size == 0 or (boxes[:, 2].max() <= image.width + 16
                                   and boxes[:, 0].min() >= -16)
        lifted = detection3d_array_to_boxes(det3d)
        assert len(lifted['centres']) <= len(boxes)
        assert np.all(lifted['centres'][:, 2] > 0)  # in front of the camera
    assert sum(len(d.detections) for d in listener.got['detections_2d'].values()) > 0
    assert sum(len(d.detections) for d in listener.got['detections_3d'].values()) > 0


def param_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'neulens_ros.tools.param', '--timeout', '30',
                           *args], env=env, capture_output=True, text=True, timeout=90)


def test_live_slo_and_policy_changes(tmp_path: Path, ros_env: dict[str, str],
                                     rclpy_context: Any) -> None:
    listener = Listener(rclpy_context, 'slo')
    overrides = {'source': {'rate_hz': 4.0, 'preload_frames': 4, 'seed': 3},
                 'gate': {'latency_slo_ms': 0.0}}
    decisions = listener.got['tile_decision']

    def mean_level(after: int, count: int = 4) -> float:
        assert listener.spin_until(lambda: len([s for s in decisions if s > after]) >= count,
                                   timeout=60.0)
        recent = [d for s, d in sorted(decisions.items()) if s > after][-count:]
        return float(np.mean([np.mean(d.levels) for d in recent]))

    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        start_graph(group, ('source', 'gate'), overrides, 'slo')
        assert listener.spin_until(lambda: len(decisions) >= 4, timeout=90.0), \
            (tmp_path / 'logs' / 'gate.log').read_text()[-2000:]
        loose = mean_level(0)
        tight = param_cli(ros_env, 'set', '/slo/gate', 'latency_slo_ms', '1')
        assert tight.returncode == 0, tight.stdout + tight.stderr
        mark = time.time_ns()  # frames stamped from now on are decided under the new SLO
        tight_level = mean_level(mark + 1)
        recent = [(d.latency_slo_ms, list(d.levels)) for s, d in sorted(decisions.items())
                  if s > mark]
        assert tight_level > loose, (recent, (tmp_path / 'logs' / 'gate.log').read_text()[-3000:])
        assert all(d.latency_slo_ms == 1.0 for s, d in decisions.items() if s > mark)
        bad = param_cli(ros_env, 'set', '/slo/gate', 'latency_slo_ms', '-5')
        assert bad.returncode == 1 and 'out of range' in bad.stdout
        assert param_cli(ros_env, 'get', '/slo/gate',
                         'latency_slo_ms').stdout.strip() == 'latency_slo_ms: 1.0'
        bad_policy = param_cli(ros_env, 'set', '/slo/gate', 'policy', 'greedy')
        assert bad_policy.returncode == 1 and 'not one of' in bad_policy.stdout
        for name, value in (('latency_slo_ms', '0'), ('fixed_level', '2'),
                            ('policy', 'fixed')):
            assert param_cli(ros_env, 'set', '/slo/gate', name, value).returncode == 0
        mark = time.time_ns()
        assert listener.spin_until(
            lambda: any(s > mark and d.policy == 'fixed' for s, d in decisions.items()), 30.0)
        fixed = [d for s, d in decisions.items() if s > mark and d.policy == 'fixed']
        assert all(set(d.levels) == {2} for d in fixed)
        group.stop()


def test_the_edges_detections_cap_the_next_frames_levels(tmp_path: Path,
                                                         ros_env: dict[str, str],
                                                         rclpy_context: Any) -> None:
    """The gate reads Detection2DArray from the edge's topic: a box seen around the middle
    of a frame keeps the tiles of the next frames at level 0 (its centre) and at most level
    2 (the rest of the box) instead of the gate's choice alone."""
    from vision_msgs.msg import Detection2DArray

    from neulens_ros.bridge.detections import boxes_to_detection2d_array
    from neulens_ros.nodes.common import make_qos, time_to_ns
    listener = Listener(rclpy_context, 'prior')
    publisher = listener.node.create_publisher(Detection2DArray, '/prior/neulens/detections_2d',
                                               make_qos('reliable', 5))
    overrides = {'source': {'rate_hz': 2.0, 'preload_frames': 4, 'seed': 3},
                 'gate': {'latency_slo_ms': 0.0, 'k_options': [3], 'stale_after_ms': 0.0,
                          'prior_max_age_ms': 5000.0, 'prior_margin_px_per_s': 0.0}}
    images, decisions = listener.got['image_raw'], listener.got['tile_decision']
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        start_graph(group, ('source', 'gate'), overrides, 'prior')
        assert listener.spin_until(lambda: len(decisions) >= 1 and len(images) >= 1, 90.0), \
            (tmp_path / 'logs' / 'gate.log').read_text()[-2000:]
        first = min(decisions)
        seen = images[first]
        w, h = seen.width, seen.height
        publisher.publish(boxes_to_detection2d_array(
            seen.header, [[0.3 * w, 0.3 * h, 0.7 * w, 0.7 * h]], [0], [0.9]))
        assert listener.spin_until(lambda: len([s for s in decisions if s > first]) >= 3, 60.0)
        group.stop()
    alone = decisions[first].gate_levels
    assert max(alone) > 2  # without the prior the gate compresses some tile further
    later = [list(d.gate_levels) for s, d in sorted(decisions.items()) if s > first]
    capped = [levels for levels in later if levels[4] == 0 and max(levels) <= 2]
    # the detections reach the gate within a frame or two of being published
    assert len(capped) >= len(later) - 2 and capped, later
    assert time_to_ns(seen.header.stamp) == first
