"""gate_node (headset / robot): CGG + DEMUX per camera frame; sends only the tiles worth it.

Per colour image it publishes the TileDecision (always, so the effect of the SLO is visible)
and a TileBatch carrying the non-skipped tiles (raw, JPEG or PNG), plus a StageTiming. It
listens to the edge's StageTiming to measure round-trip time and bandwidth (for DEMUX's
transmission term when `bandwidth_mbps` is 0) and the edge's compute time (DEMUX's online
correction). The SLO knobs are live parameters: a change is validated as a whole and swapped
in between frames; a bad value is rejected with the reason.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from neulens_msgs.msg import StageTiming, TileBatch, TileDecision
from neulens_ros.bridge.image import image_to_numpy, numpy_to_compressed
from neulens_ros.bridge.tile_batch import TILE_ENCODINGS, image_format, pack_tile_batch
from neulens_ros.bridge.tile_decision import decision_to_msg
from neulens_ros.control.clg import POLICIES
from neulens_ros.control.demux import SloConfig
from neulens_ros.control.link_estimator import LinkEstimator
from neulens_ros.errors import NeulensError
from neulens_ros.gate.runtime import GATE_BACKENDS
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.models.names import DETECTOR, GATE
from neulens_ros.nodes.common import (make_qos, publisher_events, qos_specs, run,
                                      subscription_events, time_to_ns)
from neulens_ros.nodes.params import ParamSpec, declare_parameters
from neulens_ros.nodes.problems import ProblemLog
from neulens_ros.nodes.stage_timing import LOG_TIMING, TIMING_QOS, StageTimingPublisher
from neulens_ros.nodes.status import StatusPublisher
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
    ParamSpec('status_period_s', 2.0, 'Period of the status on /diagnostics', read_only=True,
              minimum=0.1, maximum=60.0, units='s'),
    ParamSpec('color_topic', 'camera/color/image_raw', 'Colour image topic', read_only=True),
    ParamSpec('decision_topic', 'neulens/tile_decision', 'TileDecision topic', read_only=True),
    ParamSpec('tile_batch_topic', 'neulens/tile_batch', 'TileBatch topic', read_only=True),
    ParamSpec('timing_topic', 'neulens/stage_timing', 'StageTiming topic (the edge replies '
              'are read here too)', read_only=True),
    *qos_specs('camera_', default='sensor_data', depth=1),
    *qos_specs('output_', default='sensor_data', depth=1),
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
        self.params = declare_parameters(self, PARAMS, validate=validate, apply=self.on_params)
        values = self.params.values
        kwargs = {key: Path(values[f'{key}_file']) for key in ('predictor', 'accuracy')
                  if values[f'{key}_file']}
        self.step = HeadsetGate.load(slo_from(values), values['gate_checkpoint'],
                                     values['detector_checkpoint'], **kwargs,
                                     gate_backend=values['gate_backend'])
        self.link = LinkEstimator(prior_bandwidth_mbps=values['bandwidth_mbps'])
        self.problems = ProblemLog(self.get_logger())
        self.in_flight: OrderedDict[int, tuple[Any, int, int]] = OrderedDict()
        self.frames = 0
        self.tiles_sent = 0
        out_qos = make_qos(values['output_qos_profile'], values['output_qos_depth'])
        self.pub_decision = self.create_publisher(
            TileDecision, values['decision_topic'], out_qos,
            event_callbacks=publisher_events(self, values['decision_topic']))
        self.pub_batch = self.create_publisher(
            TileBatch, values['tile_batch_topic'], out_qos,
            event_callbacks=publisher_events(self, values['tile_batch_topic']))
        self.timing = StageTimingPublisher(self, values['timing_topic'], 'gate')
        self.create_subscription(
            Image, values['color_topic'], self.on_image,
            make_qos(values['camera_qos_profile'], values['camera_qos_depth']),
            event_callbacks=subscription_events(self, values['color_topic']))
        self.create_subscription(StageTiming, values['timing_topic'], self.on_timing,
                                 TIMING_QOS)
        self.status = StatusPublisher(self)
        self.create_timer(values['status_period_s'], self.publish_status)
        self.get_logger().info(f'gate ready: SLO {slo_from(values)}')

    def on_params(self, values: dict[str, Any]) -> None:
        if self.step is not None:
            slo = slo_from(values)
            self.step.set_slo(slo)
            self.link.prior_bandwidth_mbps = values['bandwidth_mbps']
            self.get_logger().info(f'SLO now {slo}')

    def on_image(self, msg: Image) -> None:
        start = self.get_clock().now()
        values = self.params.values
        try:
            rgb = image_to_numpy(msg, 'rgb8')
            link = self.link.state(values['bandwidth_mbps'])
            frame = self.step.process(np.ascontiguousarray(rgb), time_to_ns(msg.header.stamp),
                                      msg.header.frame_id, link)
        except NeulensError as exc:
            self.problems.report(type(exc).__name__, str(exc))
            self.timing.publish(msg.header, start, self.get_clock().now(), len(msg.data), 0,
                                dropped=True, reason=f'{type(exc).__name__}: {exc}')
            return
        decision = frame.decision
        self.pub_decision.publish(decision_to_msg(decision, msg.header))
        encoding = values['tile_encoding']
        full = self.full_frame_bytes(frame.input_image, encoding, values['jpeg_quality'])
        sent = self.get_clock().now()
        batch = pack_tile_batch(decision, msg.header, frame.tiles, encoding,
                                values['jpeg_quality'], full, sent.to_msg())
        self.pub_batch.publish(batch)  # also when every tile is skipped: the edge answers
        if frame.tiles:
            pixels = sum(t.shape[0] * t.shape[1] for t in frame.tiles.values())
            self.step.observe_encoding(int(batch.payload_bytes), pixels)
        self.in_flight[decision.stamp_ns] = (decision, sent.nanoseconds,
                                             int(batch.payload_bytes))
        while len(self.in_flight) > 100:
            self.in_flight.popitem(last=False)
        self.frames += 1
        self.tiles_sent += len(frame.tiles)
        self.timing.publish(msg.header, start, self.get_clock().now(), len(msg.data),
                            int(batch.payload_bytes))

    def full_frame_bytes(self, image: np.ndarray, encoding: str, quality: int) -> int:
        """Bytes the whole network input would take in the tile encoding (the baseline)."""
        fmt = image_format(encoding)
        if fmt == 'raw':
            return image.nbytes
        return len(numpy_to_compressed(image, fmt, quality).data)

    def on_timing(self, msg: StageTiming) -> None:
        """The edge's reply for a frame: link sample + measured compute."""
        if msg.stage != 'supernet' or msg.dropped:
            return
        entry = self.in_flight.pop(time_to_ns(msg.header.stamp), None)
        if entry is None:
            return
        decision, sent_ns, payload = entry
        processing_ms = (time_to_ns(msg.end) - time_to_ns(msg.start)) / 1e6
        round_trip_ms = (self.get_clock().now().nanoseconds - sent_ns) / 1e6
        self.link.add(payload, round_trip_ms, processing_ms)
        self.step.observe_compute(decision, processing_ms)

    def publish_status(self) -> None:
        link = self.link.state(self.params.values['bandwidth_mbps'])
        values = {'frames': self.frames, 'tiles_sent': self.tiles_sent,
                  'policy': self.params.values['policy'],
                  'latency_slo_ms': self.params.values['latency_slo_ms'],
                  'link_bandwidth_mbps': round(link.bandwidth_mbps, 2),
                  'link_rtt_ms': round(link.rtt_ms, 2), 'link_samples': link.samples,
                  **{f'dropped_{k}': v for k, v in sorted(self.problems.counts.items())}}
        level = 'warn' if self.problems.counts else 'ok'
        self.status.publish(level, f'{self.frames} frames, {self.tiles_sent} tiles sent',
                            values)


def main(args: list[str] | None = None) -> int:
    return run(GateNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
