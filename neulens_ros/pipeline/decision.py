"""FrameDecision: how one frame is tiled and compressed; the ROS-free twin of TileDecision."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neulens_ros.errors import DataError
from neulens_ros.control.clg import POLICIES
from neulens_ros.levels import LEVEL_SKIP, NUM_LEVELS



@dataclass(frozen=True)
class FrameDecision:
    """The gate's decision for one frame (fields and units as in msg/TileDecision.msg)."""

    stamp_ns: int  # camera frame stamp, nanoseconds
    frame_id: str  # camera optical frame
    image_size: tuple[int, int]  # original frame (width, height), pixels
    input_size: tuple[int, int]  # network input (width, height) the tiles are cut from
    k: int  # tiles per side
    p_index: int  # index into the model's split point options
    p_layers: int  # layers in the front at that split point
    halo: str  # 'paper', 'exact' or an integer number of input pixels
    levels: tuple[int, ...]  # [k*k] level per tile, row-major, LEVEL_SKIP = skipped
    tile_rects: np.ndarray = field(repr=False)  # [k*k, 4] int32 x0 y0 x1 y1 (x1, y1 excl.)
    gate_levels: tuple[int, ...] = ()  # [k*k] the gate's own choice before DEMUX raised it
    confidences: tuple[float, ...] = ()  # [k*k] gate confidence per tile, 0..1
    policy: str = 'cs'
    latency_slo_ms: float = 0.0  # 0 = none
    memory_slo_mb: float = 0.0  # 0 = none
    bandwidth_mbps: float = 0.0  # used for the transmission term; 0 = unknown
    rtt_ms: float = 0.0
    predicted_latency_ms: float = 0.0
    predicted_memory_mb: float = 0.0
    fits_slo: bool = True
    gate_time_ms: float = 0.0
    demux_time_ms: float = 0.0

    def __post_init__(self) -> None:
        tiles = self.k * self.k
        problems = []
        if self.k < 1:
            problems.append(f'k must be >= 1, got {self.k}')
        if min(self.image_size) < 1 or min(self.input_size) < 1:
            problems.append(f'image size {self.image_size} and input size {self.input_size} '
                            'must be positive')
        if len(self.levels) != tiles:
            problems.append(f'{len(self.levels)} levels for k={self.k} (need {tiles})')
        elif any(not 0 <= lv <= LEVEL_SKIP for lv in self.levels):
            problems.append(f'levels must be in 0..{LEVEL_SKIP}, got {list(self.levels)}')
        rects = np.asarray(self.tile_rects)
        if rects.shape != (tiles, 4):
            problems.append(f'tile_rects must be [{tiles}, 4], got {list(rects.shape)}')
        elif np.any(rects[:, 2] <= rects[:, 0]) or np.any(rects[:, 3] <= rects[:, 1]):
            problems.append('every tile rectangle needs x1 > x0 and y1 > y0')
        for name, values in (('gate_levels', self.gate_levels),
                             ('confidences', self.confidences)):
            if values and len(values) != tiles:
                problems.append(f'{len(values)} {name} for k={self.k} (need {tiles} or none)')
        if self.policy not in POLICIES:
            problems.append(f'policy {self.policy!r} is not one of {POLICIES}')
        if problems:
            raise DataError('invalid tile decision: ' + '; '.join(problems))
        object.__setattr__(self, 'tile_rects', rects.astype(np.int32, copy=False))

    @property
    def sent_tiles(self) -> tuple[int, ...]:
        """Row-major indices of the tiles that are computed and transmitted, ascending."""
        return tuple(i for i, lv in enumerate(self.levels) if lv != LEVEL_SKIP)

    def tile_size(self, index: int) -> tuple[int, int]:
        """(width, height) of tile `index`'s input rectangle, pixels."""
        x0, y0, x1, y1 = (int(v) for v in self.tile_rects[index])
        return x1 - x0, y1 - y0

    def level_histogram(self) -> np.ndarray:
        """[NUM_LEVELS] number of tiles at each level."""
        return np.bincount(np.asarray(self.levels, dtype=np.int64), minlength=NUM_LEVELS)
