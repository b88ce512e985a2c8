"""source_node: publishes colour, depth and CameraInfo with one stamp per frame.

Sources: generated scenes (seeded, with ground truth, of the scene `preset`), walks (a camera
moving through one room after another, hard preset; rendered for `walk_fps` frames per second,
by default the publishing rate, so the camera moves in real time), the real Middlebury RGB-D
sample, or a folder written by `neulens-gen-data`. Depth is registered to the colour camera
(same optical frame and intrinsics), published as 32FC1 metres or 16UC1 millimetres. With
`publish_ground_truth`, the generator's 2D boxes go out as a Detection2DArray (a walk's
objects with their track id in Detection2D.id), for accuracy measurements downstream.
With `preload_frames`, that many frames are prepared first, one per timer tick (a stop signal
is answered within one frame's rendering; a long preload logs its progress), then cycled.
"""

from __future__ import annotations

import itertools
import time
from typing import Iterator

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from neulens_ros.bridge.camera_info import camera_to_info
from neulens_ros.bridge.detections import boxes_to_detection2d_array
from neulens_ros.bridge.image import depth_to_millimetres, numpy_to_image
from neulens_ros.data.scene_types import PRESETS
from neulens_ros.data.scenes import is_labelled
from neulens_ros.data.sequence import SOURCES, RGBDFrame, frame_stream
from neulens_ros.models.names import DEFAULT_PRESET
from neulens_ros.nodes.common import make_qos, publisher_events, qos_specs, run
from neulens_ros.nodes.params import ParamSpec, declare_parameters
from neulens_ros.nodes.stage_timing import LOG_TIMING, StageTimingPublisher
from neulens_ros.nodes.stop import StopRequest

PRELOAD_LOG_S = 10.0  # a long preload logs its progress this often

PARAMS = [
    ParamSpec('source', 'generated', 'Where frames come from', read_only=True,
              choices=SOURCES),
    ParamSpec('folder', '', "Data set folder (source 'folder')", read_only=True),
    ParamSpec('preset', DEFAULT_PRESET, "Scene preset of the generated scenes (walks: 'hard')",
              read_only=True, choices=PRESETS),
    ParamSpec('seed', 0, 'Seed of the first generated scene or walk', read_only=True,
              minimum=0, maximum=2**31 - 1),
    ParamSpec('density', 'mixed', 'Generated scene density', read_only=True,
              choices=('dense', 'sparse', 'mixed')),
    ParamSpec('width', 640, 'Generated frame width', read_only=True, minimum=32, maximum=4096,
              units='px'),
    ParamSpec('height', 480, 'Generated frame height', read_only=True, minimum=32,
              maximum=4096, units='px'),
    ParamSpec('rate_hz', 5.0, 'Publishing rate', minimum=0.1, maximum=120.0, units='Hz'),
    ParamSpec('walk_fps', 0.0, 'Frame rate a walk is rendered for: how far the camera moves '
              'between frames (0 = rate_hz at start: real time)', read_only=True,
              minimum=0.0, maximum=120.0, units='Hz'),
    ParamSpec('preload_frames', 10, 'Distinct frames prepared before the first one is sent, '
              'then cycled, so rendering never delays the stream (0 = prepare each frame on '
              'the fly; a walk jumps back to its start after them)', read_only=True, minimum=0,
              maximum=10000),
    ParamSpec('num_frames', 0, 'Stop after this many frames (0 = run forever, looping)',
              read_only=True, minimum=0, maximum=10**9),
    ParamSpec('start_delay_s', 0.0, 'Wait this long before the first frame (lets '
              'subscribers discover the topics)', read_only=True, minimum=0.0, maximum=60.0,
              units='s'),
    ParamSpec('wait_for_subscribers', 0, 'Before the first frame (and its start delay), wait '
              'until the colour and the depth topic each have this many subscribers, so '
              'nodes still loading their models miss nothing (0 = do not wait)',
              read_only=True, minimum=0, maximum=100),
    ParamSpec('frame_id', '', "Optical frame id ('' = the source camera's)", read_only=True),
    ParamSpec('depth_encoding', '32FC1', 'Depth image encoding (32FC1 metres or 16UC1 mm)',
              read_only=True, choices=('32FC1', '16UC1')),
    ParamSpec('publish_ground_truth', True, 'Publish ground-truth 2D boxes when the source '
              'has them', read_only=True),
    ParamSpec('color_topic', 'camera/color/image_raw', 'Colour image topic', read_only=True),
    ParamSpec('color_info_topic', 'camera/color/camera_info', 'Colour CameraInfo topic',
              read_only=True),
    ParamSpec('depth_topic', 'camera/depth/image_raw', 'Depth image topic (registered to '
              'the colour camera)', read_only=True),
    ParamSpec('depth_info_topic', 'camera/depth/camera_info', 'Depth CameraInfo topic',
              read_only=True),
    ParamSpec('ground_truth_topic', 'ground_truth/detections_2d', 'Ground-truth boxes topic',
              read_only=True),
    ParamSpec('timing_topic', 'neulens/stage_timing', 'StageTiming topic', read_only=True),
    *qos_specs(default='sensor_data', depth=5),
    LOG_TIMING,
]


class SourceNode(Node):
    """Publishes one RGB-D frame per timer tick."""

    def __init__(self) -> None:
        super().__init__('source')
        self.params = declare_parameters(self, PARAMS, apply=self.on_params)
        values = self.params.values
        self.frames: Iterator[RGBDFrame] = self.open_stream(values)
        self.pool: list[RGBDFrame] = []  # preload_frames frames, prepared one per timer tick
        self.preloading = values['preload_frames'] > 0
        self.preload_started = self.preload_logged = time.monotonic()
        qos = make_qos(values['qos_profile'], values['qos_depth'])

        def publisher(msg_type: type, name: str):  # noqa: ANN202
            return self.create_publisher(msg_type, values[name], qos,
                                         event_callbacks=publisher_events(self, values[name]))
        self.pub_color = publisher(Image, 'color_topic')
        self.pub_color_info = publisher(CameraInfo, 'color_info_topic')
        self.pub_depth = publisher(Image, 'depth_topic')
        self.pub_depth_info = publisher(CameraInfo, 'depth_info_topic')
        self.pub_truth = publisher(Detection2DArray, 'ground_truth_topic')
        self.timing = StageTimingPublisher(self, values['timing_topic'], 'source')
        self.published = 0
        self.first_frame_at: float | None = None  # set once the subscribers are there
        self.waiting_since = time.monotonic()
        self.timer = self.create_timer(1.0 / values['rate_hz'], self.on_timer)

    def open_stream(self, values: dict) -> Iterator[RGBDFrame]:
        """The frames to send (without a preload; with one, the frames to prepare)."""
        stream = frame_stream(values['source'], folder=values['folder'], seed=values['seed'],
                              density=values['density'], width=values['width'],
                              height=values['height'], preset=values['preset'],
                              walk_fps=values['walk_fps'] or values['rate_hz'])
        return stream if values['preload_frames'] else self.limited(stream)

    def limited(self, stream: Iterator[RGBDFrame]) -> Iterator[RGBDFrame]:
        limit = self.params.values['num_frames']
        return itertools.islice(stream, limit) if limit else stream

    def preload(self) -> None:
        """Prepare the next frame of the preload (one per timer tick, so a stop signal is
        answered within a frame's rendering); once all are there, cycle them."""
        wanted = self.params.values['preload_frames']
        frame = next(self.frames, None)
        if frame is not None:
            self.pool.append(frame)
        now = time.monotonic()
        if frame is not None and len(self.pool) < wanted:
            if now - self.preload_logged >= PRELOAD_LOG_S:
                self.get_logger().info(f'preparing frames: {len(self.pool)} of {wanted}')
                self.preload_logged = now
            return
        self.get_logger().info(f'prepared {len(self.pool)} frames in '
                               f'{now - self.preload_started:.1f} s')
        self.frames = self.limited(itertools.cycle(self.pool))
        self.preloading = False

    def on_params(self, values: dict) -> None:
        timer = getattr(self, 'timer', None)
        if timer is not None and values['rate_hz'] != 1e9 / timer.timer_period_ns:
            timer.cancel()
            self.destroy_timer(timer)
            self.timer = self.create_timer(1.0 / values['rate_hz'], self.on_timer)

    def ready(self) -> bool:
        """True once the first frame may go: subscribers present, then the start delay."""
        now = time.monotonic()
        if self.first_frame_at is None:
            wanted = self.params.values['wait_for_subscribers']
            counts = (self.pub_color.get_subscription_count(),
                      self.pub_depth.get_subscription_count())
            if min(counts) < wanted:
                if now - self.waiting_since >= 10.0:
                    self.get_logger().info(f'waiting for {wanted} subscribers on the colour and '
                                           f'depth topics (have {counts[0]} and {counts[1]})')
                    self.waiting_since = now
                return False
            self.first_frame_at = now + self.params.values['start_delay_s']
        return now >= self.first_frame_at

    def on_timer(self) -> None:
        if self.preloading:
            self.preload()
            return
        if not self.ready():
            return
        start = self.get_clock().now()
        frame = next(self.frames, None)
        if frame is None:  # num_frames reached: the process ends (launchers see exit code 0)
            self.get_logger().info(f'source finished after {self.published} frames')
            raise SystemExit(0)
        values = self.params.values
        header = Header(stamp=start.to_msg(),
                        frame_id=values['frame_id'] or frame.camera.frame_id)
        color = numpy_to_image(frame.rgb, 'rgb8', header=header)
        depth_array = frame.depth_m
        if values['depth_encoding'] == '16UC1':
            depth_array = depth_to_millimetres(depth_array)
        depth = numpy_to_image(depth_array, values['depth_encoding'], header=header)
        info = camera_to_info(frame.camera, header=header)
        self.pub_color.publish(color)
        self.pub_color_info.publish(info)
        self.pub_depth.publish(depth)
        self.pub_depth_info.publish(info)
        if values['publish_ground_truth'] and frame.objects is not None:
            height, width = frame.rgb.shape[:2]
            truth = [o for o in frame.objects if is_labelled(o, width, height)]
            self.pub_truth.publish(boxes_to_detection2d_array(
                header, [o.box2d for o in truth], [o.class_id for o in truth],
                [1.0] * len(truth), [str(o.track_id) if o.track_id >= 0 else '' for o in truth]))
        self.published += 1
        self.timing.publish(header, start, self.get_clock().now(), bytes_in=0,
                            bytes_out=len(color.data) + len(depth.data))


def main(args: list[str] | None = None, stop: StopRequest | None = None) -> int:
    return run(SourceNode, args, stop)


if __name__ == '__main__':
    raise SystemExit(main())
