"""lifting_node (headset): 2D detections + depth + CameraInfo -> vision_msgs 3D detections.

Detections arrive from the edge a few hundred milliseconds after their camera frame, so the
node keeps short, stamp-ordered queues of depth images and CameraInfo and pairs each
Detection2DArray with the depth and CameraInfo of the same frame (approximate time, bounded
slop). It publishes a Detection3DArray (camera optical frame, the 2D hypothesis carried over)
and, optionally, RViz markers. A box without enough valid depth yields no 3D box and is
counted; bad input (unknown depth encoding, missing intrinsics) is dropped, logged once per
kind and counted on /diagnostics.
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import MarkerArray

from neulens_ros.bridge.camera_info import info_to_camera
from neulens_ros.bridge.detections import (boxes3d_to_detection3d_array,
                                           detection2d_array_to_boxes)
from neulens_ros.bridge.image import image_to_numpy
from neulens_ros.bridge.markers import detection_markers
from neulens_ros.data.scenes import class_names
from neulens_ros.errors import NeulensError
from neulens_ros.lifting.lift import (Box2D, LiftingConfig, footprints_for, lift_detections,
                                      warm_up)
from neulens_ros.models.names import DEFAULT_PRESET
from neulens_ros.nodes.common import make_qos, qos_specs, run, subscription_events, time_to_ns
from neulens_ros.nodes.params import ParamSpec, declare_parameters
from neulens_ros.nodes.problems import ProblemLog
from neulens_ros.nodes.stage_timing import LOG_TIMING, StageTimingPublisher
from neulens_ros.nodes.status import StatusPublisher
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
    ParamSpec('min_score', 0.0, 'Lift only detections with at least this score', minimum=0.0,
              maximum=1.0),
    ParamSpec('up_vector', [0.0, -0.9659, -0.2588], "Gravity 'up' in the camera optical "
              'frame (from the IMU or TF; the default is the generated scenes\' camera, '
              'pitched 15 degrees down)', item_type=float, minimum=-1.0, maximum=1.0),
    ParamSpec('publish_markers', True, 'Publish RViz markers'),
    ParamSpec('class_names', list(class_names(DEFAULT_PRESET)), "The detector's class names "
              'by class id: marker labels, and the shape word of each (box, cylinder, sphere, '
              'cone, pyramid) completes its 3D boxes', item_type=str),
    ParamSpec('status_period_s', 2.0, 'Period of the status on /diagnostics', read_only=True,
              minimum=0.1, maximum=60.0, units='s'),
    ParamSpec('detections_topic', 'neulens/detections_2d', 'Input Detection2DArray topic',
              read_only=True),
    ParamSpec('depth_topic', 'camera/depth/image_raw', 'Depth image topic (registered to the '
              'colour camera)', read_only=True),
    ParamSpec('depth_info_topic', 'camera/depth/camera_info', 'Depth CameraInfo topic',
              read_only=True),
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
                         footprints=footprints_for(values['class_names']))


def validate(values: dict[str, Any]) -> str:
    if values['min_depth_m'] >= values['max_depth_m']:
        return (f"min_depth_m ({values['min_depth_m']}) must be below max_depth_m "
                f"({values['max_depth_m']})")
    if len(values['up_vector']) != 3:
        return f"up_vector needs 3 values, got {values['up_vector']}"
    try:
        config_from(values)
    except NeulensError as exc:
        return str(exc)
    return ''


class LiftingNode(Node):
    """Lifts each frame's 2D detections to 3D boxes."""

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
        camera_qos = make_qos(values['camera_qos_profile'], values['camera_qos_depth'])
        det_qos = make_qos(values['detections_qos_profile'], values['detections_qos_depth'])
        for stream, msg_type, topic, qos in (
                ('detections', Detection2DArray, values['detections_topic'], det_qos),
                ('depth', Image, values['depth_topic'], camera_qos),
                ('info', CameraInfo, values['depth_info_topic'], camera_qos)):
            self.create_subscription(msg_type, topic, self.collector(stream), qos,
                                     event_callbacks=subscription_events(self, topic))
        self.pub_3d = self.create_publisher(Detection3DArray, values['detections_3d_topic'],
                                            det_qos)
        self.pub_markers = self.create_publisher(MarkerArray, values['markers_topic'], det_qos)
        self.timing = StageTimingPublisher(self, values['timing_topic'], 'lifting')
        self.status = StatusPublisher(self)
        self.create_timer(values['status_period_s'], self.publish_status)
        if not warm_up(self.config):  # open3d's import and first calls, before the first frame
            self.get_logger().warning('lifting warm-up lifted nothing (a block 1.6 m away): '
                                      'check min_depth_m / max_depth_m / min_points')

    def on_params(self, values: dict[str, Any]) -> None:
        self.config = config_from(values)

    def collector(self, stream: str):  # noqa: ANN201 - a subscription callback
        def collect(msg: Any) -> None:
            for match in self.matcher.add(stream, time_to_ns(msg.header.stamp), msg):
                self.lift(match['detections'], match['depth'], match['info'])
        return collect

    def lift(self, detections: Detection2DArray, depth: Image, info: CameraInfo) -> None:
        start = self.get_clock().now()
        values = self.params.values
        header = detections.header
        try:
            boxes, classes, scores = detection2d_array_to_boxes(detections)
            camera = info_to_camera(info)
            depth_array = image_to_numpy(depth)
            keep = [i for i, s in enumerate(scores) if s >= values['min_score']]
            result = lift_detections(
                [Box2D(*boxes[i], class_id=int(classes[i]), score=float(scores[i]))
                 for i in keep],
                depth_array, depth.encoding, camera, self.config, colour_size=None)
        except NeulensError as exc:
            self.problems.report(type(exc).__name__, str(exc))
            self.timing.publish(header, start, self.get_clock().now(), bytes_in=0, bytes_out=0,
                                dropped=True, reason=f'{type(exc).__name__}: {exc}')
            return
        for reason, count in result.skipped.items():
            self.problems.counts[f'skipped_{reason}'] += count
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


def main(args: list[str] | None = None) -> int:
    return run(LiftingNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
