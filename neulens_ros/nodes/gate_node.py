"""gate_node (headset / robot): CGG + DEMUX per camera frame; sends only the tiles worth it.

Per colour image it takes it publishes the TileDecision (also when no tile is sent, so the
effect of the SLO is visible) and a TileBatch carrying the non-skipped tiles (raw, JPEG or
PNG), plus a StageTiming. It listens to the edge's StageTiming to measure round-trip time and
bandwidth (for DEMUX's transmission term when `bandwidth_mbps` is 0) and the edge's compute
time (DEMUX's online correction), and to the edge's Detection2DArray: the newest frame's boxes
cap the gate's levels of the next frames where objects were seen (the temporal prior,
gate/prior.py; `temporal_prior` and the `prior_*` parameters). The SLO knobs are live
parameters: a change is validated as a whole and swapped in between frames; a bad value is
rejected with the reason.

Frames are taken latest-first (nodes/latest.py): a frame superseded while the gate works, one
older than `stale_after_ms`, and one whose stamp goes backwards are dropped and counted. The
edge's replies also tell whether it is alive (nodes/liveness.py): when it falls silent the
status goes to ERROR at once, only a probe frame per `edge_probe_period_s` is sent, and the
first reply ends the outage (logged with its length).

Flow control (nodes/flow.py): with `max_frames_in_flight` frames sent and not yet answered by
the last stage of the pipeline (lifting, or the edge without lifting), the gate leaves the
newest camera frame waiting until one is answered instead of working on frames the edge or
lifting would supersede; a waiting frame replaced by a newer one is counted as
`pipeline_full`.
"""

from __future__ import annotations

import threading
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from neulens_msgs.msg import StageTiming, TileBatch, TileDecision
from neulens_ros.bridge.image import image_to_rgb_resized, numpy_to_compressed
from neulens_ros.bridge.tile_batch import TILE_ENCODINGS, image_format, pack_tile_batch
from neulens_ros.bridge.tile_decision import decision_to_msg
from neulens_ros.control.clg import POLICIES
from neulens_ros.control.demux import SloConfig
from neulens_ros.control.link_estimator import LinkEstimator
from neulens_ros.errors import NeulensError
from neulens_ros.bridge.detections import detection2d_array_to_boxes
from neulens_ros.gate.prior import DEFAULT_MARGIN_PX_PER_S, PreviousDetections, Sighting
from neulens_ros.gate.runtime import GATE_BACKENDS
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.models.names import DETECTOR, GATE
from neulens_ros.nodes.common import (make_qos, publisher_events, qos_specs, run,
                                      subscription_events, time_to_ns)
from neulens_ros.nodes.flow import FrameFlow
from neulens_ros.nodes.latest import ArrivalCheck, LatestWorker, staleness
from neulens_ros.nodes.liveness import LOST, OK, UNREACHABLE, WAITING, EdgeLiveness
from neulens_ros.nodes.params import ParamSpec, declare_parameters
from neulens_ros.nodes.problems import ProblemLog
from neulens_ros.nodes.stage_timing import LOG_TIMING, TIMING_QOS, StageTimingPublisher
from neulens_ros.nodes.status import STATUS_WINDOW, StatusPublisher, worst
from neulens_ros.nodes.stop import StopRequest
from neulens_ros.nodes.window import EventWindow
from neulens_ros.pipeline.headset import HeadsetGate
from neulens_ros.supernet.detector import P_OPTIONS

PARAMS = [
    ParamSpec('latency_slo_ms', 0.0, 'End-to-end latency SLO of gate + transmission + edge '
              'compute (0 = none)', minimum=0.0, maximum=10000.0, units='ms'),
    ParamSpec('memory_slo_mb', 0.0, 'Memory SLO of the edge front (0 = none)', minimum=0.0,
              maximum=65536.0, units='MB'),
    ParamSpec('bandwidth_mbps', 0.0, 'Link bandwidth for the transmission term (0 = measure '
              'from the edge replies)', minimum=0.0, maximum=100000.0, units='Mbit/s'),
    ParamSpec('policy', 'cs', 'Compression level gear policy', choices=POLICIES),
    ParamSpec('fixed_level', 0, "Level of every tile with policy 'fixed'", minimum=0,
              maximum=4),
    ParamSpec('k_options', [2, 3, 4], 'Tile grids DEMUX may choose', item_type=int,
              minimum=2, maximum=4),
    ParamSpec('p_options', list(P_OPTIONS), 'Split points DEMUX may choose', item_type=str,
              choices=P_OPTIONS),
    ParamSpec('theta_f', 0.5, 'Confidence below which CLG raises a tile first', minimum=0.0,
              maximum=1.0),
    ParamSpec('delta_w', [2, 4, 5], 'Tiles raised per CLG step for k = 2, 3, 4',
              item_type=int, minimum=1, maximum=16),
    ParamSpec('temporal_prior', True, "Cap the gate's levels where the edge's latest "
              'detections saw objects (gate/prior.py): a moving camera sees most of them '
              'again'),
    ParamSpec('prior_max_age_ms', 500.0, 'Detections older than this (camera stamp of their '
              'frame to the current one) make no prior', minimum=1.0, maximum=10000.0,
              units='ms'),
    ParamSpec('prior_margin_px_per_s', DEFAULT_MARGIN_PX_PER_S, 'How far content may move '
              'across the network input per second (head turns): the prior grows the boxes '
              'by this times their age', minimum=0.0, maximum=100000.0, units='px/s'),
    ParamSpec('prior_score_threshold', 0.3, 'Detections below this score make no prior',
              minimum=0.0, maximum=1.0),
    ParamSpec('tile_encoding', 'jpeg_mosaic', 'How tiles travel: raw, one image per tile '
              '(jpeg, png) or one mosaic of the kept tiles', choices=TILE_ENCODINGS),
    ParamSpec('jpeg_quality', 90, 'JPEG quality of the tiles', minimum=1, maximum=100),
    ParamSpec('gate_checkpoint', GATE, 'Gate checkpoint name or .pt file', read_only=True),
    ParamSpec('gate_backend', 'onnxruntime', 'Runs the gate network: onnxruntime (same '
              'output, less fixed cost per call) or torch', choices=GATE_BACKENDS,
              read_only=True),
    ParamSpec('detector_checkpoint', DETECTOR, 'Detector checkpoint (for its input size and '
              'tile geometry; the edge must run the same one)', read_only=True),
    ParamSpec('predictor_file', '', "DEMUX predictor from neulens-profile ('' = shipped)",
              read_only=True),
    ParamSpec('accuracy_file', '', "DEMUX accuracy table from neulens-train ('' = the one "
              'exported with the detector checkpoint)', read_only=True),
    ParamSpec('stale_after_ms', 1000.0, 'Drop a camera frame older than this when the gate '
              'takes it (camera stamp to now; 0 = never drop)', minimum=0.0, maximum=60000.0,
              units='ms'),
    ParamSpec('edge_timeout_ms', 300.0, 'The edge is silent (status ERROR, only probes sent) '
              'when a frame has waited this long beyond the expected reply time (the recent '
              'round trip) without any reply', read_only=True, minimum=10.0, maximum=60000.0,
              units='ms'),
    ParamSpec('max_frames_in_flight', 2, 'Frames sent and not yet answered by the last stage '
              '(lifting, else the edge) at most: the gate takes the next camera frame when '
              'one is answered, so no stage works on frames a later one supersedes (0 = no '
              'limit)', minimum=0, maximum=100),
    ParamSpec('edge_probe_period_s', 0.5, 'While the edge is silent, send one frame per this '
              'period (the others are counted as edge_silent)', read_only=True, minimum=0.01,
              maximum=60.0, units='s'),
    ParamSpec('status_period_s', 2.0, 'Period of the status on /diagnostics', read_only=True,
              minimum=0.1, maximum=60.0, units='s'),
    STATUS_WINDOW,
    ParamSpec('color_topic', 'camera/color/image_raw', 'Colour image topic', read_only=True),
    ParamSpec('decision_topic', 'neulens/tile_decision', 'TileDecision topic', read_only=True),
    ParamSpec('tile_batch_topic', 'neulens/tile_batch', 'TileBatch topic', read_only=True),
    ParamSpec('timing_topic', 'neulens/stage_timing', 'StageTiming topic (the edge replies '
              'are read here too)', read_only=True),
    ParamSpec('detections_topic', 'neulens/detections_2d', "The edge's Detection2DArray "
              'topic (the temporal prior)', read_only=True),
    *qos_specs('camera_', default='sensor_data', depth=1),
    *qos_specs('output_', default='sensor_data', depth=1),
    *qos_specs('detections_', default='reliable', depth=5),
    LOG_TIMING,
]


def slo_from(values: dict[str, Any]) -> SloConfig:
    return SloConfig(latency_ms=values['latency_slo_ms'], memory_mb=values['memory_slo_mb'],
                     policy=values['policy'], fixed_level=values['fixed_level'],
                     theta_f=values['theta_f'],
                     delta_w=dict(zip(TILE_GRIDS, values['delta_w'], strict=False)),
                     k_options=tuple(values['k_options']),
                     p_options=tuple(values['p_options']))


def validate(values: dict[str, Any]) -> str:
    if len(values['delta_w']) != 3:
        return f"delta_w needs 3 values (k = 2, 3, 4), got {values['delta_w']}"
    try:
        slo_from(values)
    except NeulensError as exc:
        return str(exc)
    return ''


class GateNode(Node):
    """CGG + DEMUX over the colour stream."""

    def __init__(self) -> None:
        super().__init__('gate')
        self.step: HeadsetGate | None = None
        # The gate, the link estimate and the frames in flight are shared by the worker
        # thread (frames) and the executor (edge replies, parameter changes).
        self.lock = threading.Lock()
        self.params = declare_parameters(self, PARAMS, validate=validate, apply=self.on_params)
        values = self.params.values
        kwargs = {key: Path(values[f'{key}_file']) for key in ('predictor', 'accuracy')
                  if values[f'{key}_file']}
        self.step = HeadsetGate.load(slo_from(values), values['gate_checkpoint'],
                                     values['detector_checkpoint'], **kwargs,
                                     gate_backend=values['gate_backend'])
        if self.step.calibration_warning:
            self.get_logger().warning(f"gate {values['gate_checkpoint']}: "
                                      f'{self.step.calibration_warning}')
        self.link = LinkEstimator(prior_bandwidth_mbps=values['bandwidth_mbps'])
        window_s = values['status_window_s']
        self.problems = ProblemLog(self.get_logger(), window_s=window_s, log_every_s=window_s)
        self.recent = EventWindow(window_s)  # frames in / out, edge replies and their RTT
        self.edge = EdgeLiveness(timeout_s=values['edge_timeout_ms'] / 1e3,
                                 probe_period_s=values['edge_probe_period_s'])
        self.arrivals = ArrivalCheck(self.problems, f"image on {values['color_topic']}")
        self.flow = FrameFlow(values['max_frames_in_flight'], values['edge_timeout_ms'] / 1e3)
        self.in_flight: OrderedDict[int, tuple[Any, int, int]] = OrderedDict()
        self.frames = 0
        self.tiles_sent = 0
        self.sighting: Sighting | None = None  # the edge's latest detections
        self.prior_frames = 0  # frames whose levels the temporal prior capped
        out_qos = make_qos(values['output_qos_profile'], values['output_qos_depth'])
        self.pub_decision = self.create_publisher(
            TileDecision, values['decision_topic'], out_qos,
            event_callbacks=publisher_events(self, values['decision_topic']))
        self.pub_batch = self.create_publisher(
            TileBatch, values['tile_batch_topic'], out_qos,
            event_callbacks=publisher_events(self, values['tile_batch_topic']))
        self.timing = StageTimingPublisher(self, values['timing_topic'], 'gate')
        self.status = StatusPublisher(self)
        self.worker = LatestWorker('gate', self.process, self.superseded, self.failed,
                                   may_start=self.may_start, held=self.held)
        self.create_subscription(
            Image, values['color_topic'], self.on_image,
            make_qos(values['camera_qos_profile'], values['camera_qos_depth']),
            event_callbacks=subscription_events(self, values['color_topic']))
        self.create_subscription(StageTiming, values['timing_topic'], self.on_timing,
                                 TIMING_QOS)
        self.create_subscription(
            Detection2DArray, values['detections_topic'], self.on_detections,
            make_qos(values['detections_qos_profile'], values['detections_qos_depth']),
            event_callbacks=subscription_events(self, values['detections_topic']))
        self.create_timer(values['status_period_s'], self.publish_status)
        self.create_timer(min(0.1, values['edge_timeout_ms'] / 2e3), self.check_edge)
        self.get_logger().info(f'gate ready: SLO {slo_from(values)}')

    def on_params(self, values: dict[str, Any]) -> None:
        if self.step is not None:
            slo = slo_from(values)
            with self.lock:
                self.step.set_slo(slo)
                self.link.prior_bandwidth_mbps = values['bandwidth_mbps']
                self.flow.limit = values['max_frames_in_flight']
            self.worker.wake()
            self.get_logger().info(f'SLO now {slo}')

    # --- input (executor thread) ----------------------------------------------------------
    def on_image(self, msg: Image) -> None:
        self.recent.add('frames_in')
        if self.arrivals.accept(time_to_ns(msg.header.stamp), msg.header.frame_id):
            self.worker.offer(msg)
        else:
            self.timing.publish_drop(msg.header, self.get_clock().now(), len(msg.data),
                                     'stamp_backwards')

    def superseded(self, msg: Image) -> None:
        self.problems.tally('superseded')
        self.timing.publish_drop(msg.header, self.get_clock().now(), len(msg.data),
                                 'superseded: a newer frame arrived before the gate was free')

    def may_start(self) -> bool:
        """The worker may take a frame: the pipeline has room (or the edge is silent: then
        the probes of EdgeLiveness pace the frames sent)."""
        with self.lock:
            return self.edge.state != OK or not self.flow.full()

    def held(self, msg: Image) -> None:
        self.problems.tally('pipeline_full')
        self.timing.publish_drop(msg.header, self.get_clock().now(), len(msg.data),
                                 'pipeline_full: a newer frame arrived while the stages after '
                                 'the gate had max_frames_in_flight frames')

    def failed(self, msg: Image, exc: Exception) -> None:
        self.get_logger().error(f'gate failed on a frame:\n{traceback.format_exc()}')
        self.problems.report(type(exc).__name__, str(exc))
        self.timing.publish_drop(msg.header, self.get_clock().now(), len(msg.data),
                                 f'{type(exc).__name__}: {exc}')

    # --- processing (worker thread) -------------------------------------------------------
    def process(self, msg: Image) -> None:
        start = self.get_clock().now()
        values = self.params.values
        detail = staleness(start.nanoseconds, time_to_ns(msg.header.stamp),
                           values['stale_after_ms'])
        if detail:
            self.problems.report('stale', detail)
            self.timing.publish_drop(msg.header, start, len(msg.data), f'stale: {detail}')
            return
        try:
            # the network input, resized before any channel reordering
            rgb = image_to_rgb_resized(msg, self.step.input_size)
            stamp_ns, image_size = time_to_ns(msg.header.stamp), (int(msg.width), int(msg.height))
            with self.lock:
                link = self.link.state(values['bandwidth_mbps'])
                previous = self.prior(stamp_ns, image_size, values)
                frame = self.step.process(rgb, stamp_ns, msg.header.frame_id, link,
                                          image_size=image_size, previous=previous)
                self.prior_frames += previous is not None
        except NeulensError as exc:
            self.problems.report(type(exc).__name__, str(exc))
            self.timing.publish_drop(msg.header, start, len(msg.data),
                                     f'{type(exc).__name__}: {exc}')
            return
        decision = frame.decision
        self.pub_decision.publish(decision_to_msg(decision, msg.header))
        self.frames += 1
        payload = 0
        if self.edge.may_send():
            payload = self.send(msg, frame, values)
        else:
            self.problems.tally('edge_silent')
        self.timing.publish(msg.header, start, self.get_clock().now(), len(msg.data), payload)

    def prior(self, stamp_ns: int, image_size: tuple[int, int], values: dict[str, Any]
              ) -> PreviousDetections | None:
        """The temporal prior of the edge's latest detections for this frame (None: off, no
        detections yet, or too old)."""
        if not values['temporal_prior'] or self.sighting is None:
            return None
        return self.sighting.previous(stamp_ns, image_size, self.step.input_size,
                                      values['prior_max_age_ms'] / 1e3,
                                      values['prior_margin_px_per_s'],
                                      values['prior_score_threshold'])

    def send(self, msg: Image, frame: Any, values: dict[str, Any]) -> int:
        """Publish the frame's TileBatch (also when every tile is skipped: the edge answers);
        its payload bytes."""
        decision = frame.decision
        encoding = values['tile_encoding']
        full = self.full_frame_bytes(frame.input_image, encoding, values['jpeg_quality'])
        sent = self.get_clock().now()
        batch = pack_tile_batch(decision, msg.header, frame.tiles, encoding,
                                values['jpeg_quality'], full, sent.to_msg())
        payload = int(batch.payload_bytes)
        with self.lock:
            if frame.tiles:
                pixels = sum(t.shape[0] * t.shape[1] for t in frame.tiles.values())
                self.step.observe_encoding(payload, pixels)
            self.in_flight[decision.stamp_ns] = (decision, sent.nanoseconds, payload)
            while len(self.in_flight) > 100:
                self.in_flight.popitem(last=False)
            self.edge.sent()
            self.flow.sent(decision.stamp_ns)
        self.pub_batch.publish(batch)
        self.recent.add('frames_out')
        self.tiles_sent += len(frame.tiles)
        return payload

    def full_frame_bytes(self, image: np.ndarray, encoding: str, quality: int) -> int:
        """Bytes the whole network input would take in the tile encoding (the baseline)."""
        fmt = image_format(encoding)
        if fmt == 'raw':
            return image.nbytes
        return len(numpy_to_compressed(image, fmt, quality).data)

    # --- the edge (executor thread) -------------------------------------------------------
    def on_detections(self, msg: Detection2DArray) -> None:
        """The edge's detections of a frame: the latest to arrive make the prior (one edge
        publishes them in frame order; after a camera restart its stamps start again)."""
        boxes, _, scores = detection2d_array_to_boxes(msg)
        sighting = Sighting(time_to_ns(msg.header.stamp), boxes, scores)
        with self.lock:
            self.sighting = sighting

    def on_timing(self, msg: StageTiming) -> None:
        """A later stage's reply for a frame (a result or a drop) ends its flight there; the
        edge's also says the edge is alive, and its result is a link sample and a measured
        compute time."""
        with self.lock:
            self.flow.replied(msg.stage, time_to_ns(msg.header.stamp), bool(msg.dropped))
        self.worker.wake()
        if msg.stage != 'supernet':
            return
        with self.lock:
            entry = None if msg.dropped else self.in_flight.pop(time_to_ns(msg.header.stamp),
                                                                 None)
            if entry is not None:
                decision, sent_ns, payload = entry
                processing_ms = (time_to_ns(msg.end) - time_to_ns(msg.start)) / 1e6
                round_trip_ms = (self.get_clock().now().nanoseconds - sent_ns) / 1e6
                self.link.add(payload, round_trip_ms, processing_ms)
                self.step.observe_compute(decision, processing_ms)
                self.recent.add('round_trip_ms', round_trip_ms)
            mean_rtt_ms = self.recent.mean('round_trip_ms')
            silence_s = self.edge.replied(None if mean_rtt_ms is None else mean_rtt_ms / 1e3)
        self.recent.add('replies')
        if silence_s is not None:
            self.get_logger().info(f'edge answering again after {silence_s:.2f} s of silence'
                                   if silence_s else 'edge answering')
            self.publish_status()

    def check_edge(self) -> None:
        with self.lock:
            became_silent = self.edge.check()
            state = self.edge.state
            waited_s = self.edge.silent_for()
        if not became_silent:
            return
        limit_ms = (self.edge.expected_reply_s * 1e3 + self.params.values['edge_timeout_ms'])
        if state == LOST:
            self.get_logger().error(
                f'edge silent: no reply for {waited_s:.2f} s (limit {limit_ms:.0f} ms: the '
                'recent round trip + edge_timeout_ms); sending one probe frame per '
                f"{self.params.values['edge_probe_period_s']} s until it answers")
        else:
            self.get_logger().warning(
                f'no reply from the edge yet ({waited_s:.2f} s after the first frame); '
                f"sending one probe frame per {self.params.values['edge_probe_period_s']} s")
        self.publish_status()

    # --- status (executor thread) ---------------------------------------------------------
    def edge_values(self) -> tuple[str, str, dict[str, Any]]:
        """The edge's part of the status: level, message and keys (link values from the
        window only, so they never outlive the replies they come from)."""
        values = self.params.values
        with self.lock:
            link = self.link.state(values['bandwidth_mbps'])
            state = self.edge.state
            waited_s = self.edge.silent_for()
            in_flight, last_stage = self.flow.in_flight(), self.flow.last_stage()
        rtt = self.recent.mean('round_trip_ms')
        keys = {'edge': state, 'edge_waiting_s': round(waited_s, 2),
                'edge_replies_per_s': round(self.recent.rate('replies'), 2),
                'link_rtt_ms': '' if rtt is None else round(rtt, 2),
                'link_samples': self.recent.count('round_trip_ms'),
                'link_bandwidth_mbps': round(link.bandwidth_mbps, 2) if rtt is not None else '',
                'frames_in_flight': in_flight, 'flow_last_stage': last_stage or ''}
        level = {OK: 'ok', WAITING: 'ok', UNREACHABLE: 'warn', LOST: 'error'}[state]
        message = {OK: '', WAITING: '', UNREACHABLE: '; no reply from the edge yet',
                   LOST: f'; edge silent for {waited_s:.1f} s'}[state]
        return level, message, keys

    def publish_status(self) -> None:
        values = self.params.values
        edge_level, edge_message, edge_keys = self.edge_values()
        keys = {'frames_in_per_s': round(self.recent.rate('frames_in'), 2),
                'frames_out_per_s': round(self.recent.rate('frames_out'), 2),
                'frames': self.frames, 'tiles_sent': self.tiles_sent,
                'prior_frames': self.prior_frames,
                'policy': values['policy'], 'latency_slo_ms': values['latency_slo_ms'],
                **edge_keys, **self.problems.status_values()}
        level = worst(self.problems.level(), edge_level)
        self.status.publish(level, f'{self.frames} frames, {self.tiles_sent} tiles sent'
                            + edge_message, keys)

    def destroy_node(self) -> None:
        """The worker first: no frame is processed against a destroyed node."""
        self.worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None, stop: StopRequest | None = None) -> int:
    return run(GateNode, args, stop)


if __name__ == '__main__':
    raise SystemExit(main())
