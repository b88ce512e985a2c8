"""lifting_node in its own processes fed by a foreign camera: depth at 848 x 480 with its own
K and frame (a RealSense without align_depth) beside 1280 x 720 colour. With the extrinsics
the node registers the depth and its 3D box is where lifting the colour camera's own depth
puts it; without them it publishes no 3D and logs one ERROR naming both frames and sizes.
Stale and superseded frames are dropped and counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifting_scene import BLOCK, COLOUR, DEPTH, DEPTH_TO_COLOUR, block_box, render

from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.lifting.extrinsics import RigidTransform
from neulens_ros.lifting.lift import LiftingConfig, lift_detections, rotation_to_quaternion
from neulens_ros.topology import load_topology

pytestmark = pytest.mark.ros

FRAMES = 5  # frames sent one by one, each lifted before the next
BURST = 8  # frames sent at once: all but the newest may be superseded
COMMON = {'up_vector': [0.0, -1.0, 0.0], 'status_period_s': 0.5,
          'camera_qos_profile': 'reliable', 'camera_qos_depth': 20,
          'detections_qos_depth': 20, 'stale_after_ms': 30000.0, 'publish_markers': False}
STALE_S = 60.0  # the age of the stale frame: beyond stale_after_ms however loaded the machine


def lifting_entry() -> Any:
    (entry,) = [n for n in load_topology() if n.name == 'lifting']
    return entry


class Camera:
    """The foreign camera and its detector in this process: colour CameraInfo, depth +
    CameraInfo in the depth camera's frame, and the block's 2D box, to two namespaces."""

    def __init__(self, context: Any, namespaces: tuple[str, ...]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo, Image
        from vision_msgs.msg import Detection2DArray, Detection3DArray

        from neulens_ros.nodes.common import make_qos
        self.rclpy = rclpy
        self.node = rclpy.create_node('foreign_camera', context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        qos = make_qos('reliable', 20)
        self.pubs = [{name: self.node.create_publisher(kind, f'/{ns}/{topic}', qos)
                      for name, kind, topic in (
                          ('color_info', CameraInfo, 'camera/color/camera_info'),
                          ('depth', Image, 'camera/depth/image_raw'),
                          ('depth_info', CameraInfo, 'camera/depth/camera_info'),
                          ('detections', Detection2DArray, 'neulens/detections_2d'))}
                     for ns in namespaces]
        self.got: dict[str, list[Any]] = {ns: [] for ns in namespaces}
        self.status: dict[str, dict[str, str]] = {ns: {} for ns in namespaces}
        for ns in namespaces:
            self.node.create_subscription(Detection3DArray, f'/{ns}/neulens/detections_3d',
                                          self.got[ns].append, qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.on_status, 50)
        self.colour_depth = render(COLOUR, RigidTransform.identity())  # [720, 1280]
        self.depth = render(DEPTH, DEPTH_TO_COLOUR).astype(np.float32)  # [480, 848]
        self.box = block_box(self.colour_depth)

    def on_status(self, msg: Any) -> None:
        for status in msg.status:
            ns = status.name.split('/')[1]  # '/<namespace>/lifting'
            if ns in self.status:
                self.status[ns] = {kv.key: kv.value for kv in status.values}

    def spin(self, seconds: float, until: Any = lambda: False) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            self.executor.spin_once(timeout_sec=0.05)

    def header(self, frame_id: str, age_s: float = 0.0) -> Any:
        from std_msgs.msg import Header
        header = Header(frame_id=frame_id)
        stamp = self.node.get_clock().now().nanoseconds - int(age_s * 1e9)
        header.stamp.sec, header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        return header

    def send_colour_info(self) -> None:
        from neulens_ros.bridge.camera_info import camera_to_info
        for pubs in self.pubs:
            pubs['color_info'].publish(camera_to_info(COLOUR, self.header(COLOUR.frame_id)))

    def send(self, age_s: float = 0.0) -> None:
        """One frame stamped `age_s` seconds ago to every namespace."""
        from neulens_ros.bridge.detections import boxes_to_detection2d_array
        from neulens_ros.bridge.image import numpy_to_image
        from neulens_ros.bridge.camera_info import camera_to_info
        colour = self.header(COLOUR.frame_id, age_s)
        depth = self.header(DEPTH.frame_id)
        depth.stamp = colour.stamp
        b = self.box
        for pubs in self.pubs:
            pubs['depth_info'].publish(camera_to_info(DEPTH, depth))
            pubs['depth'].publish(numpy_to_image(self.depth, '32FC1', header=depth))
            pubs['detections'].publish(boxes_to_detection2d_array(
                colour, [[b.x0, b.y0, b.x1, b.y1]], [0], [0.9]))


def test_foreign_depth_is_registered_or_refused(tmp_path: Path, ros_env: dict[str, str],
                                                rclpy_context: Any) -> None:
    translation = DEPTH_TO_COLOUR.translation.tolist()
    rotation = rotation_to_quaternion(DEPTH_TO_COLOUR.rotation).tolist()
    camera = Camera(rclpy_context, ('with', 'without'))
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('with', node_command(lifting_entry(), 'with', {
            **COMMON, 'depth_to_color_translation': translation,
            'depth_to_color_rotation': rotation}))
        group.start('without', node_command(lifting_entry(), 'without', COMMON))
        camera.spin(120.0, lambda: all(s.get('frames') == '0' for s in camera.status.values()))
        assert all(camera.status.values()), group.log('with')[-2000:] + group.log('without')
        camera.spin(2.0)  # every endpoint discovered
        camera.send_colour_info()  # known before the first frame (the camera publishes it)
        camera.spin(1.0)
        for frame in range(FRAMES):
            camera.send()
            camera.spin(60.0, lambda n=frame: len(camera.got['with']) > n)
        for _ in range(BURST):
            camera.send()
        camera.send(age_s=STALE_S)  # stale on arrival
        camera.spin(90.0, lambda: all(int(s.get('total_stale', 0)) >= 1
                                      for s in camera.status.values())
                    and int(camera.status['with'].get('frames', 0)) >= FRAMES + 1)
        camera.spin(1.5)
        group.stop()
    with_status, without_status = camera.status['with'], camera.status['without']
    # registered with the extrinsics: the box where lifting the colour camera's depth puts it
    assert len(camera.got['with']) >= FRAMES + 1, group.log('with')[-3000:]
    reference = lift_detections([camera.box], camera.colour_depth.astype(np.float32), '32FC1',
                                COLOUR, LiftingConfig(up=(0.0, -1.0, 0.0))).objects[0].centre
    for msg in camera.got['with']:
        assert msg.header.frame_id == COLOUR.frame_id and len(msg.detections) == 1
        p = msg.detections[0].bbox.center.position
        centre = np.array([p.x, p.y, p.z])
        assert np.linalg.norm(centre - reference) < 0.02
        assert np.linalg.norm(centre - (BLOCK[0] + BLOCK[1]) / 2) < 0.05
    # every frame sent is lifted or counted as dropped (superseded in the burst, or stale)
    lifted = int(with_status['frames'])
    superseded = int(with_status.get('total_superseded', 0))
    assert int(with_status.get('total_stale', 0)) == 1, with_status
    assert lifted + superseded + 1 == FRAMES + BURST + 1, with_status
    assert superseded >= 1, with_status
    # without them: no 3D at all and one ERROR naming both frames and sizes
    assert camera.got['without'] == []
    errors = [line for line in group.log('without').splitlines() if '[ERROR]' in line]
    assert len(errors) == 1, errors
    for word in (DEPTH.frame_id, '848x480', COLOUR.frame_id, '1280x720'):
        assert word in errors[0]
    assert int(without_status['total_unregistered_depth']) + int(
        without_status.get('total_superseded', 0)) == FRAMES + BURST, without_status
    assert without_status['frames'] == '0'
