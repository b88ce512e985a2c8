"""supernet_node (edge): runs the tile-adaptive detector on the tiles the headset sent.

A lifecycle node, like nav2's servers: `configure` loads the checkpoint and builds (or loads
from the cache) the backend's per-level engines, `activate` starts processing TileBatch
messages, `deactivate` stops it and `cleanup` releases the model. Parameters marked "applied
at configure" take effect at the next configure (deactivate, cleanup, set, configure,
activate). With `autostart` the node configures and activates itself at start-up.

Every TileBatch yields a vision_msgs/Detection2DArray with the camera frame's stamp and frame
id, boxes in original image pixels, class ids of the checkpoint's data set (its metadata's
class_ids), and a StageTiming; the class map goes out as vision_msgs/LabelInfo on a
transient-local topic at every configure. Batches are taken latest-first
(nodes/latest.py): one superseded while the detector works, one older than `stale_after_ms`,
one whose stamp goes backwards and bad input (an empty batch, a tile of the wrong size or
encoding, a k the node does not serve) are dropped with a StageTiming saying why (so the
headset knows the edge is alive), counted in the status on /diagnostics, and the problems
among them logged once per distinct problem and window; the node never crashes on input.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.serialization import serialize_message
from rclpy.time import Time
from vision_msgs.msg import Detection2DArray

from neulens_msgs.msg import TileBatch
from neulens_ros.bridge.detections import boxes_to_detection2d_array
from neulens_ros.bridge.tile_batch import unpack_tile_batch
from neulens_ros.errors import NeulensError
from neulens_ros.models.names import DETECTOR
from neulens_ros.models.zoo import checkpoint_labels
from neulens_ros.nodes.common import make_qos, qos_specs, run, subscription_events, time_to_ns
from neulens_ros.nodes.label_info import LABEL_INFO_TOPIC, LabelInfoPublisher
from neulens_ros.nodes.latest import KEPT, ArrivalCheck, LatestWorker, staleness
from neulens_ros.nodes.params import ParamSpec, declare_parameters
from neulens_ros.nodes.problems import ProblemLog
from neulens_ros.nodes.stage_timing import LOG_TIMING, StageTimingPublisher
from neulens_ros.nodes.status import STATUS_WINDOW, StatusPublisher, worst
from neulens_ros.nodes.stop import StopRequest
from neulens_ros.nodes.window import EventWindow
from neulens_ros.pipeline.edge import BACKENDS, EdgeConfig, EdgeDetector

AT_CONFIGURE = ' (applied at configure)'

PARAMS = [
    ParamSpec('checkpoint', DETECTOR, 'Detector checkpoint: a shipped model name or a .pt '
              'file' + AT_CONFIGURE),
    ParamSpec('backend', 'auto', 'Inference backend; auto = TensorRT where present, else torch'
              + AT_CONFIGURE, choices=BACKENDS),
    ParamSpec('precision', 'fp32', 'Numeric precision (fp16 needs TensorRT)' + AT_CONFIGURE,
              choices=('fp32', 'fp16')),
    ParamSpec('num_threads', 0, 'CPU threads for inference (0 = backend default)'
              + AT_CONFIGURE, minimum=0, maximum=256),
    ParamSpec('engine_cache_dir', '', "Engine/ONNX cache folder ('' = the user cache)"
              + AT_CONFIGURE),
    ParamSpec('static_batches', False, 'onnxruntime: a session per batch size of every tile '
              'size too (faster inference, longer start-up)' + AT_CONFIGURE),
    ParamSpec('k_options', [2, 3, 4], 'Tile grids this node serves (others are rejected)'
              + AT_CONFIGURE, item_type=int, minimum=1, maximum=8),
    ParamSpec('score_threshold', 0.3, 'Minimum detection score', minimum=0.0, maximum=1.0),
    ParamSpec('max_detections', 100, 'Most detections per frame', minimum=1, maximum=1000),
    ParamSpec('stale_after_ms', 1000.0, 'Drop a frame older than this when it arrives (camera '
              'stamp to now; 0 = never drop)', minimum=0.0, maximum=60000.0, units='ms'),
    ParamSpec('autostart', True, 'Configure and activate at start-up', read_only=True),
    ParamSpec('status_period_s', 2.0, 'Period of the status on /diagnostics', read_only=True,
              minimum=0.1, maximum=60.0, units='s'),
    STATUS_WINDOW,
    ParamSpec('tile_batch_topic', 'neulens/tile_batch', 'Input TileBatch topic',
              read_only=True),
    ParamSpec('detections_topic', 'neulens/detections_2d', 'Output Detection2DArray topic',
              read_only=True),
    ParamSpec('timing_topic', 'neulens/stage_timing', 'StageTiming topic', read_only=True),
    LABEL_INFO_TOPIC,
    # Input depth 1: the subscription only fills the latest-frame slot, so the middleware
    # queue stays short whatever the depth; a deeper one only adds frames to supersede.
    *qos_specs('input_', default='sensor_data', depth=1),
    *qos_specs('output_', default='reliable', depth=10),
    LOG_TIMING,
]


class SupernetNode(LifecycleNode):
    """Edge detector over TileBatch messages."""

    def __init__(self) -> None:
        super().__init__('supernet')
        self.detector: EdgeDetector | None = None
        self.params = declare_parameters(self, PARAMS, apply=self.on_params)
        values = self.params.values
        window_s = values['status_window_s']
        self.problems = ProblemLog(self.get_logger(), window_s=window_s, log_every_s=window_s)
        self.recent = EventWindow(window_s)  # batches in, detections out
        self.arrivals = ArrivalCheck(self.problems,
                                     f"TileBatch on {values['tile_batch_topic']}")
        self.subscription = None
        self.processed = 0
        self.busy_ms = 0.0
        self.lifecycle_state = 'unconfigured'
        out_qos = make_qos(values['output_qos_profile'], values['output_qos_depth'])
        self.pub_detections = self.create_lifecycle_publisher(
            Detection2DArray, values['detections_topic'], out_qos)
        self.timing = StageTimingPublisher(self, values['timing_topic'], 'supernet')
        self.label_info = LabelInfoPublisher(self, values['label_info_topic'])
        self.status = StatusPublisher(self)
        self.worker = LatestWorker('supernet', self.process, self.superseded, self.failed)
        self.create_timer(values['status_period_s'], self.publish_status)
        if values['autostart']:
            self.autostart_timer = self.create_timer(0.0, self.autostart)

    def autostart(self) -> None:
        self.destroy_timer(self.autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_params(self, values: dict[str, Any]) -> None:
        if self.detector is not None:
            self.detector.set_output_limits(values['score_threshold'], values['max_detections'])
            self.label_info.publish(None, values['score_threshold'])

    # --- lifecycle ------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self.params.values
        started = time.monotonic()
        try:
            config = EdgeConfig(
                checkpoint=values['checkpoint'], backend=values['backend'],
                precision=values['precision'], num_threads=values['num_threads'],
                cache_dir=values['engine_cache_dir'], static_batches=values['static_batches'],
                k_options=tuple(values['k_options']),
                score_threshold=values['score_threshold'],
                max_detections=values['max_detections'])
            detector = EdgeDetector.load(config)
            self.label_info.publish(checkpoint_labels(detector.meta), values['score_threshold'])
            self.detector = detector
        except NeulensError as exc:
            self.get_logger().error(f'configure failed, staying unconfigured: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f'configured in {time.monotonic() - started:.1f} s: {self.detector.describe()}')
        self.lifecycle_state = 'inactive'
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self.params.values
        topic = values['tile_batch_topic']
        self.subscription = self.create_subscription(
            TileBatch, topic, self.on_batch,
            make_qos(values['input_qos_profile'], values['input_qos_depth']),
            event_callbacks=subscription_events(self, topic))
        self.get_logger().info(f'active: processing {topic}')
        self.lifecycle_state = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_processing()
        self.lifecycle_state = 'inactive'
        return super().on_deactivate(state)

    def stop_processing(self) -> None:
        if self.subscription is not None:
            self.destroy_subscription(self.subscription)
            self.subscription = None

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.detector = None
        self.lifecycle_state = 'unconfigured'
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_processing()
        released = self.detector is not None
        self.detector = None
        self.lifecycle_state = 'finalized'
        self.get_logger().info('finalized' + (': detector and engines released' if released
                                              else ''))
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """The lifecycle's shutdown transition first (stops processing, releases the
        engines), as a managed node does when its process is stopped."""
        self.worker.stop()  # first: no batch is processed against a released detector
        if self.lifecycle_state in ('unconfigured', 'inactive', 'active'):
            self.trigger_shutdown()
        super().destroy_node()

    # --- input (executor thread) ----------------------------------------------------------
    def on_batch(self, msg: TileBatch) -> None:
        self.recent.add('frames_in')
        header = msg.decision.header
        if self.arrivals.accept(time_to_ns(header.stamp), header.frame_id):
            self.worker.offer(msg)
        else:
            self.timing.publish_drop(header, self.get_clock().now(), int(msg.payload_bytes),
                                     'stamp_backwards')

    def superseded(self, msg: TileBatch) -> None:
        self.problems.tally('superseded')
        self.timing.publish_drop(msg.decision.header, self.get_clock().now(),
                                 int(msg.payload_bytes), 'superseded: a newer batch arrived '
                                 'before the detector was free')

    def failed(self, msg: TileBatch, exc: Exception) -> None:
        self.get_logger().error(f'detector failed on a batch:\n{traceback.format_exc()}')
        self.drop(msg.decision.header, self.get_clock().now(), int(msg.payload_bytes),
                  type(exc).__name__, str(exc))

    # --- processing (worker thread) -------------------------------------------------------
    def process(self, msg: TileBatch) -> None:
        start = self.get_clock().now()
        header = msg.decision.header
        bytes_in = int(msg.payload_bytes)
        detail = staleness(start.nanoseconds, time_to_ns(header.stamp),
                           self.params.values['stale_after_ms'])
        if detail:
            self.drop(header, start, bytes_in, 'stale', detail)
            return
        detector = self.detector
        if detector is None or self.lifecycle_state != 'active':  # taken while deactivating
            self.problems.tally('inactive')
            return
        try:
            decision, tiles = unpack_tile_batch(msg)
            result = detector.run(decision, tiles)
        except NeulensError as exc:
            self.drop(header, start, bytes_in, type(exc).__name__, str(exc))
            return
        out = boxes_to_detection2d_array(header, result.boxes,
                                         self.label_info.labels.dataset_ids(result.class_ids),
                                         result.scores)
        self.pub_detections.publish(out)
        end = self.get_clock().now()
        self.processed += 1
        self.recent.add('frames_out')
        self.recent.add('busy_ms', (end - start).nanoseconds / 1e6)
        self.busy_ms += (end - start).nanoseconds / 1e6
        self.timing.publish(header, start, end, bytes_in=bytes_in,
                            bytes_out=len(serialize_message(out)))

    def drop(self, header: Any, start: Time, bytes_in: int, kind: str, detail: str) -> None:
        self.problems.report(kind, detail)
        self.timing.publish_drop(header, start, bytes_in, f'{kind}: {detail}')

    # --- status ---------------------------------------------------------------------------
    def publish_status(self) -> None:
        state = self.lifecycle_state
        recent_ms = self.recent.mean('busy_ms')
        dropped = sum(n for kind, n in self.problems.counts.items() if kind not in KEPT)
        values = {'state': state,
                  'frames_in_per_s': round(self.recent.rate('frames_in'), 2),
                  'frames_out_per_s': round(self.recent.rate('frames_out'), 2),
                  'recent_mean_ms': '' if recent_ms is None else round(recent_ms, 2),
                  'processed': self.processed, 'dropped': dropped,
                  'mean_ms': round(self.busy_ms / self.processed, 2) if self.processed else 0,
                  **self.problems.status_values()}
        level = worst('ok' if state == 'active' else 'warn', self.problems.level())
        self.status.publish(level, f'{state}, {self.processed} frames, {dropped} dropped',
                            values)


def main(args: list[str] | None = None, stop: StopRequest | None = None) -> int:
    return run(SupernetNode, args, stop)


if __name__ == '__main__':
    raise SystemExit(main())
