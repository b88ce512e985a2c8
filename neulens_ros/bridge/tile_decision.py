"""FrameDecision <-> neulens_msgs/TileDecision."""

from __future__ import annotations

from typing import Any

import numpy as np
from neulens_msgs.msg import TileDecision

from neulens_ros.errors import DataError
from neulens_ros.pipeline.decision import FrameDecision

# Float fields copied one to one between the dataclass and the message.
_SCALARS = ('policy', 'latency_slo_ms', 'memory_slo_mb', 'bandwidth_mbps', 'rtt_ms',
            'predicted_latency_ms', 'predicted_memory_mb', 'fits_slo', 'gate_time_ms',
            'demux_time_ms', 'k', 'p_index', 'p_layers', 'halo')


def decision_to_msg(decision: FrameDecision, header: Any) -> TileDecision:
    """TileDecision carrying `decision`; `header` = the camera frame's header."""
    msg = TileDecision(header=header)
    msg.image_width, msg.image_height = decision.image_size
    msg.input_width, msg.input_height = decision.input_size
    for name in _SCALARS:
        setattr(msg, name, getattr(decision, name))
    msg.levels = list(decision.levels)
    msg.gate_levels = list(decision.gate_levels)
    msg.confidences = [float(c) for c in decision.confidences]
    msg.tile_rects = decision.tile_rects.reshape(-1).tolist()
    return msg


def msg_to_decision(msg: Any) -> FrameDecision:
    """FrameDecision from a TileDecision (rclpy or rosbags message); DataError when the
    message is inconsistent (wrong number of levels or rectangles, levels out of range)."""
    rects = np.asarray(msg.tile_rects, dtype=np.int32)
    if rects.size % 4:
        raise DataError(f'tile_rects has {rects.size} values, not a multiple of 4')
    stamp = msg.header.stamp
    return FrameDecision(
        stamp_ns=int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec),
        frame_id=msg.header.frame_id,
        image_size=(int(msg.image_width), int(msg.image_height)),
        input_size=(int(msg.input_width), int(msg.input_height)),
        levels=tuple(int(v) for v in msg.levels),
        gate_levels=tuple(int(v) for v in msg.gate_levels),
        confidences=tuple(float(v) for v in msg.confidences),
        tile_rects=rects.reshape(-1, 4),
        **{name: _plain(getattr(msg, name)) for name in _SCALARS})


def _plain(value: Any) -> Any:
    """numpy scalars (rosbags messages) -> Python scalars."""
    return value.item() if isinstance(value, np.generic) else value
