"""The temporal prior: the previous frame's detections keep the gate from compressing where an
object was just seen.

A headset or robot camera moves through one scene, so most objects of a frame were in the
frame before, a little displaced. The prior takes the previous frame's detections (boxes in
the detector's input pixels, scores) with a score of at least `score_threshold`, grows each
by `margin_px` on every side (and each box centre into a square of that half-width), and
gives every tile of the current grid a kind (gate/tile_kinds.py): CENTRE where a grown centre
reaches the tile, TOUCHED where only a grown box does, EMPTY elsewhere. The gate's levels are
then capped per kind (`centre_level`, `touched_level`; empty tiles are not capped): the prior
can only lower a tile's level, never raise it, so a tile where nothing was seen stays the
gate's choice, and objects entering the view are the gate's job. With `margin_px` 0 and the
true boxes, the kinds are the ground-truth oracle's (eval/oracle.py).

Default margin: how far content moves between frames when the camera turns. Walks
(data/walk.py) cap the camera's yaw rate at WalkConfig.max_turn_deg_s = 90 deg/s at
WalkConfig.fps = 10, 9 degrees per frame; the detector's 256-pixel-wide input sees with a
focal length of 525 x 256 / 640 = 210 px (SceneConfig.focal_px at 640 px, scaled), so a
capped turn moves content at the image centre by 210 tan(9 deg) = 33 px (more towards the
sides: about 51 px at the edge). On 20 held-out walks two thirds of the frames turn at the cap,
so the margin covers the common case at the centre. Walking (at most 0.14 m per frame) and
sliding objects (at most 0.08 m per frame) move less: 0.14 m across the view at 3 m is 10 px.
The prior is two [T, M] comparisons (T tiles, M boxes); `neulens-eval stream` times the gate
with and without it (`gate_ms_per_frame`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neulens_ros.data.scene_types import SceneConfig
from neulens_ros.data.walk import WalkConfig
from neulens_ros.errors import ConfigError, DataError
from neulens_ros.gate.tile_kinds import CENTRE, EMPTY, KINDS, TOUCHED, box_hits
from neulens_ros.levels import LEVEL_SKIP
from neulens_ros.supernet.detector import DetectorConfig


def turn_shift_px(focal_px: float, turn_deg_s: float, fps: float) -> float:
    """Pixels the content at the image centre moves in one frame of a turn at `turn_deg_s`."""
    return focal_px * math.tan(math.radians(turn_deg_s / fps))


_INPUT_FOCAL_PX = SceneConfig().focal_px * DetectorConfig().input_width / SceneConfig().width
DEFAULT_MARGIN_PX = float(round(turn_shift_px(_INPUT_FOCAL_PX, WalkConfig().max_turn_deg_s,
                                              WalkConfig().fps)))  # 33 px
# the same margin per second of age of the detections (the gate node's default): 330 px/s
DEFAULT_MARGIN_PX_PER_S = DEFAULT_MARGIN_PX * WalkConfig().fps


@dataclass(frozen=True)
class PriorConfig:
    """How the previous frame's detections cap the gate's levels; validated on creation."""

    margin_px: float = DEFAULT_MARGIN_PX  # growth of boxes and centres, network-input pixels
    score_threshold: float = 0.3  # detections below this score are not used
    centre_level: int = 0  # highest level of a tile a (grown) centre reaches
    touched_level: int = 2  # highest level of a tile only a (grown) box reaches

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.margin_px) and self.margin_px >= 0):
            problems.append(f'margin_px {self.margin_px} must be finite and >= 0')
        if not 0.0 <= self.score_threshold <= 1.0:
            problems.append(f'score_threshold {self.score_threshold} is outside 0..1')
        levels = (self.centre_level, self.touched_level)
        if not all(0 <= lv <= LEVEL_SKIP for lv in levels):
            problems.append(f'centre_level and touched_level must be in 0..{LEVEL_SKIP}, got '
                            f'{levels}')
        elif self.centre_level > self.touched_level:
            problems.append(f'centre_level {self.centre_level} must not be above '
                            f'touched_level {self.touched_level}')
        if problems:
            raise ConfigError('invalid PriorConfig: ' + '; '.join(problems))

    def caps(self) -> np.ndarray:
        """[3] the highest level per tile kind (CENTRE, TOUCHED, EMPTY)."""
        caps = np.full(KINDS, LEVEL_SKIP, np.int64)
        caps[CENTRE], caps[TOUCHED] = self.centre_level, self.touched_level
        return caps


@dataclass(frozen=True)
class PreviousDetections:
    """Detections of an earlier frame of the stream and the prior they make for this one."""

    boxes: np.ndarray  # [M, 4] x0 y0 x1 y1, network-input pixels
    scores: np.ndarray  # [M]
    config: PriorConfig  # its margin covers the motion since their frame

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(self.scores):
            raise DataError(f'previous detections need [M, 4] boxes and [M] scores, got '
                            f'{boxes.shape} and {np.shape(self.scores)}')


@dataclass(frozen=True)
class Sighting:
    """Detections of one camera frame as a stream returns them (the gate node keeps the
    latest): the prior they make for a later frame."""

    stamp_ns: int  # camera stamp of the frame they were detected in
    boxes: np.ndarray  # [M, 4] x0 y0 x1 y1, camera image pixels
    scores: np.ndarray  # [M]

    def previous(self, stamp_ns: int, image_size: tuple[int, int],
                 input_size: tuple[int, int], max_age_s: float, margin_px_per_s: float,
                 score_threshold: float) -> PreviousDetections | None:
        """The prior for the frame stamped `stamp_ns` of `image_size` (width, height) whose
        network input is `input_size`: the boxes in input pixels, grown by margin_px_per_s
        times their age; None when they are not older than the frame or older than
        `max_age_s`."""
        age_s = (stamp_ns - self.stamp_ns) / 1e9
        if not 0.0 < age_s <= max_age_s:
            return None
        scale = np.tile(np.asarray(input_size, np.float64) / np.asarray(image_size), 2)
        return PreviousDetections(np.asarray(self.boxes, np.float64).reshape(-1, 4) * scale,
                                  self.scores, PriorConfig(margin_px=margin_px_per_s * age_s,
                                                           score_threshold=score_threshold))


def prior_kinds(boxes: np.ndarray, scores: np.ndarray, owned: np.ndarray,
                config: PriorConfig) -> np.ndarray:
    """[T] kind of each owned block [T, 4] (gate/tile_kinds.py owned_blocks) under the
    previous frame's boxes [M, 4] x0 y0 x1 y1 (input pixels) with scores [M], grown by the
    margin."""
    keep = np.asarray(scores) >= config.score_threshold  # [M]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[keep]
    m = config.margin_px
    grow = np.array([-m, -m, m, m])
    grown = boxes + grow  # [M, 4]
    centres = np.tile((boxes[:, :2] + boxes[:, 2:]) / 2, 2) + grow  # [M, 4] squares
    # one pass over both sets of boxes: a set reaches a tile by a centre or an overlap
    own, overlap = box_hits(np.concatenate([centres, grown]), owned)  # [T, 2M] each
    hit = own | overlap
    centre, touched = hit[:, :len(boxes)].any(axis=1), hit[:, len(boxes):].any(axis=1)  # [T]
    return np.where(centre, CENTRE, np.where(touched, TOUCHED, EMPTY))


def apply_prior(levels: np.ndarray, boxes: np.ndarray, scores: np.ndarray, owned: np.ndarray,
                config: PriorConfig) -> np.ndarray:
    """The gate's levels [T] capped by the prior of the previous frame's boxes [M, 4] and
    scores [M] on the owned blocks [T, 4]: never above the gate's own level."""
    return np.minimum(levels, config.caps()[prior_kinds(boxes, scores, owned, config)])
