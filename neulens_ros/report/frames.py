"""Join a bag's StageTiming, TileBatch/TileDecision and detection messages by frame stamp.

Every pipeline message carries the camera frame's stamp in its header; that stamp is the
join key. The result is one FrameRecord per camera frame seen anywhere in the bag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from neulens_ros.bag.reader import BagMessage, read_messages, topic_types

STAGE_ORDER = ('source', 'gate', 'supernet', 'lifting')
TYPE_TIMING = 'neulens_msgs/msg/StageTiming'
TYPE_BATCH = 'neulens_msgs/msg/TileBatch'
TYPE_DECISION = 'neulens_msgs/msg/TileDecision'
TYPE_DET2D = 'vision_msgs/msg/Detection2DArray'
TYPE_DET3D = 'vision_msgs/msg/Detection3DArray'
KNOWN_TYPES = (TYPE_TIMING, TYPE_BATCH, TYPE_DECISION, TYPE_DET2D, TYPE_DET3D)


def stamp_ns(stamp: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time-like object."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class StageRecord:
    """One stage's work on one frame (from StageTiming)."""

    start_ns: int
    end_ns: int
    bytes_in: int
    bytes_out: int
    dropped: bool
    reason: str

    @property
    def latency_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass
class FrameRecord:
    """Everything the bag says about one camera frame."""

    stamp_ns: int
    stages: dict[str, StageRecord] = field(default_factory=dict)
    decision: Any = None  # TileDecision (from TileBatch or the decision topic)
    batch_sent_ns: int | None = None
    payload_bytes: int | None = None
    full_frame_bytes: int | None = None
    tiles_sent: int | None = None
    detections_2d: int | None = None
    detections_3d: int | None = None


@dataclass
class BagFrames:
    """Frames of a bag plus what the bag lacks."""

    frames: list[FrameRecord]
    topics: dict[str, str]  # topic -> type
    missing: list[str]  # message types the report uses that the bag does not have


def stage_record(msg: Any) -> StageRecord:
    """The StageRecord of a StageTiming message (from a bag or live)."""
    return StageRecord(stamp_ns(msg.start), stamp_ns(msg.end), int(msg.bytes_in),
                       int(msg.bytes_out), bool(msg.dropped), str(msg.reason))


def join_frames(messages: Iterable[BagMessage]) -> list[FrameRecord]:
    """FrameRecords keyed by header stamp, sorted by stamp."""
    frames: dict[int, FrameRecord] = {}

    def frame(stamp: Any) -> FrameRecord:
        key = stamp_ns(stamp)
        return frames.setdefault(key, FrameRecord(stamp_ns=key))

    for item in messages:
        msg = item.msg
        if item.msgtype == TYPE_TIMING:
            frame(msg.header.stamp).stages[msg.stage] = stage_record(msg)
        elif item.msgtype == TYPE_BATCH:
            rec = frame(msg.decision.header.stamp)
            rec.decision = msg.decision
            rec.batch_sent_ns = stamp_ns(msg.sent)
            rec.payload_bytes = int(msg.payload_bytes)
            rec.full_frame_bytes = int(msg.full_frame_bytes)
            rec.tiles_sent = len(msg.tile_indices)
        elif item.msgtype == TYPE_DECISION:
            rec = frame(msg.header.stamp)
            rec.decision = rec.decision or msg
        elif item.msgtype == TYPE_DET2D:
            frame(msg.header.stamp).detections_2d = len(msg.detections)
        elif item.msgtype == TYPE_DET3D:
            frame(msg.header.stamp).detections_3d = len(msg.detections)
    return [frames[k] for k in sorted(frames)]


def load_frames(path: Path) -> BagFrames:
    """Read the pipeline topics of a bag (any subset of them) into FrameRecords."""
    topics = topic_types(path)
    wanted = [t for t, ty in topics.items() if ty in KNOWN_TYPES]
    present = set(topics.values())
    missing = [t for t in KNOWN_TYPES if t not in present]
    return BagFrames(join_frames(read_messages(path, wanted)) if wanted else [], topics,
                     missing)
