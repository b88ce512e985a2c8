"""lifting_node (headset): 2D detections + depth + CameraInfo -> vision_msgs 3D detections.

Detections arrive from the edge a few hundred milliseconds after their camera frame, so the
node keeps short, stamp-ordered queues of depth images and CameraInfo and pairs each
Detection2DArray with the depth and CameraInfo of the same frame (approximate time, bounded
slop). Lifting runs in a worker thread on the newest matched frame only: the callbacks keep
draining the topics meanwhile, a frame replaced by a newer one before the worker took it is
dropped as `superseded`, and one older than `stale_after_ms` (on arrival or when its turn
comes) as `stale` (both counted on /diagnostics), so 3D never queues up behind a slow frame.

The 2D boxes live in the colour image (its CameraInfo gives their frame, size and K). Depth
in the colour camera's frame is used as it is when its size and K agree with the colour
camera's; depth in a frame of its own is registered to the colour camera with the
depth-to-colour extrinsics from the `depth_to_color_*` parameters or, where tf2_msgs is
installed, /tf_static. Depth that cannot be registered is refused with one ERROR naming both
frames and sizes and gives no 3D at all. The node publishes a Detection3DArray (colour camera
optical frame, the 2D hypothesis carried over) and, optionally, RViz markers. A box without
enough valid depth yields no 3D box and is counted; bad input (unknown depth encoding,
missing intrinsics) is dropped, logged once per distinct problem and window and counted on
/diagnostics.
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection2DArray, Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from neulens_ros.bridge.camera_info import info_to_camera
from neulens_ros.bridge.detections import (boxes3d_to_detection3d_array,
                                           detection2d_array_to_boxes, label_info_classes)
from neulens_ros.bridge.image import image_to_numpy
from neulens_ros.bridge.markers import detection_markers
from neulens_ros.data.scenes import class_names
from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import LiftingError, NeulensError
from neulens_ros.lifting.extrinsics import RigidTransform, StaticTransforms
from neulens_ros.lifting.lift import (METRES, Box2D, LiftingConfig, MetresView,
                                      footprints_for, lift_detections, warm_up)
from neulens_ros.lifting.registration import depth_for_colour
from neulens_ros.models.labels import ClassLabels
from neulens_ros.models.names import DEFAULT_PRESET
from neulens_ros.nodes.common import make_qos, qos_specs, run, subscription_events, time_to_ns
from neulens_ros.nodes.label_info import LABEL_INFO_TOPIC
from neulens_ros.nodes.latest import LatestWorker, staleness
from neulens_ros.nodes.params import ParamSpec, declare_parameters
from neulens_ros.nodes.problems import ProblemLog
from neulens_ros.nodes.stage_timing import LOG_TIMING, StageTimingPublisher
from neulens_ros.nodes.status import StatusPublisher
from neulens_ros.nodes.stop import StopRequest
from neulens_ros.sync import ApproximateTimeMatcher

PARAMS = [
    ParamSpec('slop_ms', 20.0, 'Largest stamp difference between detections, depth and '
              'CameraInfo of one frame', read_only=True, minimum=0.0, maximum=1000.0,
              units='ms'),
    ParamSpec('queue_size', 30, 'Frames of depth kept while waiting for their detections '
              '(must cover the pipeline latency times the frame rate)', read_only=True,
              minimum=1, maximum=1000),
    ParamSpec('min_depth_m', 0.2, 'Nearest valid depth', minimum=0.0, maximum=100.0,
              units='m'),
    ParamSpec('max_depth_m', 10.0, 'Farthest valid depth', minimum=0.01, maximum=1000.0,
              units='m'),
    ParamSpec('min_points', 30, 'Fewest object points for a 3D box', minimum=3,
              maximum=100000),
    ParamSpec('voxel_size_m', 0.02, 'Voxel size of the object point downsampling (0 = off)',
              minimum=0.0, maximum=1.0, units='m'),
    ParamSpec('samples_per_voxel', 2.0, "Pixel columns of a box lifted per voxel at the box's "
              'nearest depth (fewer columns for near objects; 0 = every column)', minimum=0.0,
              maximum=100.0),
    ParamSpec('stale_after_ms', 1000.0, 'Drop detections older than this (camera stamp to the '
              'start of their lifting; 0 = never)', minimum=0.0, maximum=60000.0, units='ms'),
    ParamSpec('depth_to_color_translation', [0.0, 0.0, 0.0], 'Position (x, y, z) of the depth '
              'camera in the colour camera optical frame, for depth not registered to the '
              'colour image (used with depth_to_color_rotation)', item_type=float,
              minimum=-10.0, maximum=10.0, units='m'),
    ParamSpec('depth_to_color_rotation', [0.0, 0.0, 0.0, 0.0], 'Orientation (x, y, z, w) of the '
              'depth optical frame in the colour optical frame; all zeros = unknown (then '
              '/tf_static, where tf2_msgs is installed)', item_type=float, minimum=-1.0,
              maximum=1.0),
    ParamSpec('min_score', 0.0, 'Lift only detections with at least this score', minimum=0.0,
              maximum=1.0),
    ParamSpec('up_vector', [0.0, -0.9659, -0.2588], "Gravity 'up' in the camera optical "
              'frame (from the IMU or TF; the default is the generated scenes\' camera, '
              'pitched 15 degrees down)', item_type=float, minimum=-1.0, maximum=1.0),
    ParamSpec('publish_markers', True, 'Publish RViz markers'),
    ParamSpec('class_names', list(class_names(DEFAULT_PRESET)), "The detector's class names "
              'by class id: marker labels, and the shape word of each (box, cylinder, sphere, '
              'cone, pyramid) completes its 3D boxes', item_type=str),
    ParamSpec('class_names_from_label_info', True, "Replace class_names by the detector's "
              'class map when its vision_msgs/LabelInfo arrives (the supernet node publishes '
              'it, transient local)', read_only=True),
    LABEL_INFO_TOPIC,
    ParamSpec('status_period_s', 2.0, 'Period of the status on /diagnostics', read_only=True,
              minimum=0.1, maximum=60.0, units='s'),
    ParamSpec('detections_topic', 'neulens/detections_2d', 'Input Detection2DArray topic',
              read_only=True),
    ParamSpec('depth_topic', 'camera/depth/image_raw', 'Depth image topic (registered to the '
              'colour camera, or in a frame of its own with known extrinsics)', read_only=True),
    ParamSpec('depth_info_topic', 'camera/depth/camera_info', 'Depth CameraInfo topic',
              read_only=True),
    ParamSpec('color_info_topic', 'camera/color/camera_info', 'Colour CameraInfo topic (the '
              'image the 2D boxes live in)', read_only=True),
    ParamSpec('detections_3d_topic', 'neulens/detections_3d', 'Output Detection3DArray topic',
              read_only=True),
    ParamSpec('markers_topic', 'neulens/markers', 'Output MarkerArray topic', read_only=True),
    ParamSpec('timing_topic', 'neulens/stage_timing', 'StageTiming topic', read_only=True),
    *qos_specs('camera_', default='sensor_data', depth=5),
    *qos_specs('detections_', default='reliable', depth=10),
    LOG_TIMING,
]


def config_from(values: dict[str, Any]) -> LiftingConfig:
    return LiftingConfig(min_depth_m=values['min_depth_m'], max_depth_m=values['max_depth_m'],
                         min_points=values['min_points'], voxel_size_m=values['voxel_size_m'],
                         up=tuple(values['up_vector']),
                         footprints=footprints_for(values['class_names']),
                         samples_per_voxel=values['samples_per_voxel'])


def extrinsics_from(values: dict[str, Any]) -> RigidTransform | None:
    """The depth-to-colour transform of the parameters (None: all-zero rotation, unknown)."""
    rotation = values['depth_to_color_rotation']
    if not any(rotation):
        return None
    return RigidTransform.from_quaternion(values['depth_to_color_translation'], rotation)


def validate(values: dict[str, Any]) -> str:
    if values['min_depth_m'] >= values['max_depth_m']:
        return (f"min_depth_m ({values['min_depth_m']}) must be below max_depth_m "
                f"({values['max_depth_m']})")
    if len(values['up_vector']) != 3:
        return f"up_vector needs 3 values, got {values['up_vector']}"
    try:
        config_from(values)
        extrinsics_from(values)
    except NeulensError as exc:
        return str(exc)
    return ''


def tf_static_qos() -> QoSProfile:
    """/tf_static's QoS: reliable and transient local, so a late subscriber gets the tree."""
    return QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


class LiftingNode(Node):
    """Lifts the newest frame's 2D detections to 3D boxes."""

    def __init__(self) -> None:
        super().__init__('lifting')
        self.config: LiftingConfig | None = None
        self.params = declare_parameters(self, PARAMS, validate=validate, apply=self.on_params)
        values = self.params.values
        self.problems = ProblemLog(self.get_logger())
        self.matcher = ApproximateTimeMatcher(
            streams=('detections', 'depth', 'info'), slop_ns=int(values['slop_ms'] * 1e6),
            size=values['queue_size'])
        self.lifted = 0
        self.frames = 0
        self.colour: PinholeCamera | None = None  # from the colour CameraInfo
        self.static_tf = StaticTransforms()
        camera_qos = make_qos(values['camera_qos_profile'], values['camera_qos_depth'])
        det_qos = make_qos(values['detections_qos_profile'], values['detections_qos_depth'])
        for stream, msg_type, topic, qos in (
                ('detections', Detection2DArray, values['detections_topic'], det_qos),
                ('depth', Image, values['depth_topic'], camera_qos),
                ('info', CameraInfo, values['depth_info_topic'], camera_qos)):
            self.create_subscription(msg_type, topic, self.collector(stream), qos,
                                     event_callbacks=subscription_events(self, topic))
        self.create_subscription(CameraInfo, values['color_info_topic'], self.on_colour_info,
                                 camera_qos,
                                 event_callbacks=subscription_events(
                                     self, values['color_info_topic']))
        self.subscribe_tf_static()
        if values['class_names_from_label_info']:
            self.create_subscription(LabelInfo, values['label_info_topic'], self.on_label_info,
                                     make_qos('reliable_transient_local', 1))
        self.pub_3d = self.create_publisher(Detection3DArray, values['detections_3d_topic'],
                                            det_qos)
        self.pub_markers = self.create_publisher(MarkerArray, values['markers_topic'], det_qos)
        self.timing = StageTimingPublisher(self, values['timing_topic'], 'lifting')
        self.status = StatusPublisher(self)
        self.create_timer(values['status_period_s'], self.publish_status)
        if not warm_up(self.config):  # open3d's import and first calls, before the first frame
            self.get_logger().warning('lifting warm-up lifted nothing (a block 1.6 m away): '
                                      'check min_depth_m / max_depth_m / min_points')
        self.worker = LatestWorker('lifting', self.lift_frame, self.superseded, self.failed)

    def subscribe_tf_static(self) -> None:
        """Read /tf_static where tf2_msgs is installed (a full ROS 2 install); without it the
        depth_to_color_* parameters are the only source of extrinsics."""
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().info('tf2_msgs is not installed: /tf_static is not read; depth '
                                   'in a frame of its own needs the depth_to_color_* '
                                   'parameters')
            return
        self.create_subscription(TFMessage, '/tf_static', self.on_tf_static, tf_static_qos())

    def on_tf_static(self, msg: Any) -> None:
        for t in msg.transforms:
            tr, q = t.transform.translation, t.transform.rotation
            try:
                self.static_tf.add(t.header.frame_id, t.child_frame_id,
                                   RigidTransform.from_quaternion([tr.x, tr.y, tr.z],
                                                                  [q.x, q.y, q.z, q.w]))
            except NeulensError as exc:
                self.count('bad_tf_static', str(exc))

    def on_params(self, values: dict[str, Any]) -> None:
        self.config = config_from(values)

    def on_label_info(self, msg: LabelInfo) -> None:
        """The detector's class map: class_names by class id (also what `ros2 param get`
        shows from then on)."""
        classes = label_info_classes(msg)
        try:
            names = ClassLabels(tuple(classes), tuple(classes.values())).names_by_id()
        except NeulensError as exc:
            self.count('bad_label_info', str(exc))
            return
        if names == list(self.params.values['class_names']):
            return
        result = self.set_parameters([Parameter('class_names', Parameter.Type.STRING_ARRAY,
                                                names)])[0]
        if not result.successful:
            self.count('bad_label_info', result.reason)
            return
        self.get_logger().info('class names from the detector\'s LabelInfo: ' + ', '.join(
            f'{i} {n}' for i, n in sorted(classes.items())))

    def on_colour_info(self, msg: CameraInfo) -> None:
        try:
            self.colour = info_to_camera(msg)
        except NeulensError as exc:
            self.count('bad_color_info', str(exc))

    def count(self, kind: str, detail: str) -> None:
        self.problems.report(kind, detail)

    def collector(self, stream: str):  # noqa: ANN201 - a subscription callback
        def collect(msg: Any) -> None:
            if stream == 'detections' and self.is_stale(msg.header):
                return  # never matched: its depth may arrive before or after it
            for match in self.matcher.add(stream, time_to_ns(msg.header.stamp), msg):
                self.worker.offer(match)
        return collect

    def is_stale(self, header: Any) -> bool:
        """True (and the frame dropped as `stale`) for detections older than
        stale_after_ms: on arrival and again when lifting takes them."""
        why = staleness(self.get_clock().now().nanoseconds, time_to_ns(header.stamp),
                        self.params.values['stale_after_ms'])
        if why:
            self.drop(header, 'stale', f'detections: {why}')
        return bool(why)

    def drop(self, header: Any, kind: str, detail: str) -> None:
        self.count(kind, detail)
        self.publish_drop(header, f'{kind}: {detail}')

    def publish_drop(self, header: Any, reason: str) -> None:
        now = self.get_clock().now()
        self.timing.publish(header, now, now, bytes_in=0, bytes_out=0, dropped=True,
                            reason=reason)

    def lift_frame(self, frame: dict[str, Any]) -> None:
        """The worker's task: one matched frame (the newest when the worker got free)."""
        self.lift(frame['detections'], frame['depth'], frame['info'])

    def superseded(self, frame: dict[str, Any]) -> None:
        """A frame replaced by a newer one before lifting took it: dropped as designed."""
        self.problems.tally('superseded')
        self.publish_drop(frame['detections'].header, 'superseded: a newer frame arrived '
                          'before lifting took this one')

    def failed(self, frame: dict[str, Any], exc: Exception) -> None:
        self.get_logger().error(f'lifting failed on a frame:\n{traceback.format_exc()}')
        self.drop(frame['detections'].header, type(exc).__name__, str(exc))

    def destroy_node(self) -> None:
        self.worker.stop(timeout_s=10.0)  # first: no frame is lifted on a destroyed node
        super().destroy_node()

    def extrinsics(self, depth_frame: str, colour_frame: str) -> RigidTransform | None:
        """Depth-to-colour transform: the parameters when set, else /tf_static's chain."""
        return (extrinsics_from(self.params.values)
                or self.static_tf.lookup(colour_frame, depth_frame))

    def refuse(self, detail: str) -> None:
        """Unregistered depth: one ERROR, then counted only (no 3D is published)."""
        self.problems.tally('unregistered_depth')
        if self.problems.counts['unregistered_depth'] == 1:
            self.get_logger().error(f'{detail}; no 3D is published (counted as '
                                    'unregistered_depth on /diagnostics)')

    def registered(self, depth: Image, info: CameraInfo, colour: PinholeCamera
                   ) -> tuple[np.ndarray | MetresView, PinholeCamera] | None:
        """(depth [H, W] metres registered to the `colour` camera, its camera), or None when
        it cannot be registered (refused). NeulensError for bad input."""
        depth_camera = info_to_camera(info)
        depth_m = MetresView(image_to_numpy(depth), depth.encoding)  # converted where read
        try:
            return depth_for_colour(depth_m, depth_camera, colour, self.extrinsics(
                depth_camera.frame_id, colour.frame_id))
        except LiftingError as exc:
            self.refuse(str(exc))
            return None

    def lift(self, detections: Detection2DArray, depth: Image, info: CameraInfo) -> None:
        start = self.get_clock().now()
        values = self.params.values
        header = detections.header
        if self.is_stale(header):
            return
        colour = self.colour
        if colour is None:
            self.drop(header, 'no_color_info', f'no CameraInfo on {values["color_info_topic"]} '
                      'yet: the frame, size and K of the 2D boxes are unknown')
            return
        try:
            boxes, classes, scores = detection2d_array_to_boxes(detections)
            registered = self.registered(depth, info, colour)
            if registered is None:
                self.timing.publish(header, start, self.get_clock().now(), bytes_in=0,
                                    bytes_out=0, dropped=True, reason='unregistered_depth')
                return
            depth_m, camera = registered
            keep = [i for i, s in enumerate(scores) if s >= values['min_score']]
            result = lift_detections(
                [Box2D(*boxes[i], class_id=int(classes[i]), score=float(scores[i]))
                 for i in keep],
                depth_m, METRES, camera, self.config,
                colour_size=(colour.width, colour.height))
        except NeulensError as exc:
            self.count(type(exc).__name__, str(exc))
            self.timing.publish(header, start, self.get_clock().now(), bytes_in=0, bytes_out=0,
                                dropped=True, reason=f'{type(exc).__name__}: {exc}')
            return
        for reason, count in result.skipped.items():
            self.problems.tally(f'skipped_{reason}', count)
        objects = result.objects
        out = boxes3d_to_detection3d_array(
            header, [o.centre for o in objects], [o.size for o in objects],
            [o.quaternion for o in objects], [o.detection.class_id for o in objects],
            [o.detection.score for o in objects], ids=[str(keep[o.index]) for o in objects])
        self.pub_3d.publish(out)
        if values['publish_markers']:
            self.pub_markers.publish(detection_markers(
                header, [o.centre for o in objects], [o.size for o in objects],
                [o.quaternion for o in objects], [o.detection.class_id for o in objects],
                [o.detection.score for o in objects], class_names=values['class_names']))
        self.frames += 1
        self.lifted += len(objects)
        self.timing.publish(header, start, self.get_clock().now(),
                            bytes_in=len(depth.data), bytes_out=len(objects))

    def publish_status(self) -> None:
        values = {'frames': self.frames, 'objects_3d': self.lifted,
                  'unmatched': sum(self.matcher.dropped.values()),
                  **self.problems.status_values()}
        level = self.problems.level()
        self.status.publish(level, f'{self.frames} frames, {self.lifted} 3D boxes', values)


def main(args: list[str] | None = None, stop: StopRequest | None = None) -> int:
    return run(LiftingNode, args, stop)


if __name__ == '__main__':
    raise SystemExit(main())
