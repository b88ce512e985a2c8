"""Gate labels from ground-truth boxes: each tile's level is the one the oracle gives its kind.

The paper's labels (gate/labels.py) run the supernet on every tile at every level: costly, so a
run labels a few hundred images. The ground-truth oracle (eval/oracle.py) shows a simpler
target that keeps accuracy: a tile that owns an object's centre at level 0, one the object
only touches at level 3, an empty tile skipped (KIND_RULE; on the hard preset's held-out frames
it keeps level 0's mAP@0.5 within 0.3 points at 56% of the MACs). Its labels need nothing but
the boxes, so every training image labels its tiles at every k, and its mirror image (flipped
left to right, boxes with it) labels them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.eval.oracle import OracleRule
from neulens_ros.gate.cgg import gate_tiles
from neulens_ros.gate.tile_kinds import CENTRE, EMPTY, TOUCHED, owned_blocks, tile_kinds
from neulens_ros.levels import LEVEL_SKIP
from neulens_ros.supernet.tiling import TileGrid

KIND_RULE = OracleRule(centre=0, touched=3, empty=LEVEL_SKIP)
# what a gate learns (its checkpoint's 'labels'): the paper's labels from the supernet
# (gate/labels.py) or the tile kinds here
GATE_LABELS = ('paper', 'kinds')


@dataclass(frozen=True)
class FrameGateData:
    """The gate tiles and labels of whole frames at one k (a gate with context needs every
    tile of a frame together)."""

    tiles: torch.Tensor  # [N, k*k, 3, 28, 28] uint8
    labels: torch.Tensor  # [N, k*k] int64 level

    def __post_init__(self) -> None:
        if self.tiles.shape[:2] != self.labels.shape or self.tiles.dtype != torch.uint8:
            raise DataError(f'frame gate data needs uint8 tiles [N, T, 3, 28, 28] and labels '
                            f'[N, T], got {self.tiles.dtype} {tuple(self.tiles.shape)} and '
                            f'{tuple(self.labels.shape)}')

    def __len__(self) -> int:
        return len(self.labels)


def mirror(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image [H, W, 3] flipped left to right and its boxes [M, 4] x0 y0 x1 y1 with it."""
    width = image.shape[1]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    flipped = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
    return np.ascontiguousarray(image[:, ::-1]), flipped


def kind_gate_data(images: np.ndarray, boxes: Sequence[np.ndarray],
                   grids: Mapping[int, TileGrid], mirrored: bool = False
                   ) -> dict[int, FrameGateData]:
    """{k: tiles and KIND_RULE labels of every image} for each k's grid; `images` [N, H, W, 3]
    uint8 network inputs with their boxes (input pixels); `mirrored` adds every image's mirror
    image after the originals."""
    frames = [(np.ascontiguousarray(img), np.asarray(b)) for img, b in zip(images, boxes,
                                                                          strict=True)]
    if mirrored:
        frames += [mirror(img, b) for img, b in frames]
    data = {}
    for k, grid in grids.items():
        owned = owned_blocks(grid)
        tiles = np.stack([gate_tiles(img, k) for img, _ in frames]) if frames else \
            np.zeros((0, k * k, 3, 28, 28), np.uint8)
        labels = np.stack([KIND_RULE.levels(tile_kinds(b, owned)) for _, b in frames]) \
            if frames else np.zeros((0, k * k), np.int64)
        data[k] = FrameGateData(torch.from_numpy(tiles), torch.from_numpy(labels))
    return data


def chosen_kinds(levels: np.ndarray) -> np.ndarray:
    """The tile kinds [...] a gate trained on KIND_RULE chose, read from its levels [...]:
    CENTRE up to the rule's centre level, TOUCHED up to its touched level, EMPTY above (a
    caution can move a tile between the rule's levels; it then counts as the next wider kind).
    Any oracle rule then gives levels to the gate's kinds, as to the true ones."""
    levels = np.asarray(levels)
    return np.where(levels <= KIND_RULE.centre, CENTRE,
                    np.where(levels <= KIND_RULE.touched, TOUCHED, EMPTY))


def rule_levels(levels: np.ndarray, rule: OracleRule | None) -> np.ndarray:
    """A gate's levels [...] at its operating point: a gate on tile kinds with a calibrated
    `rule` gives its chosen kinds (chosen_kinds) the rule's levels; without a rule (the paper's
    gate, or a kinds gate calibrated on its caution alone) the levels are the gate's own."""
    return np.asarray(levels, np.int64) if rule is None else rule.levels(chosen_kinds(levels))


def kind_rule(values: Sequence[int] | None, gate_labels: str) -> OracleRule | None:
    """The calibrated rule `values` ([centre, touched, empty] levels, the `kind_rule` a gate
    on tile kinds ships in its metadata) of a gate that learnt `gate_labels`; None for none."""
    if values is None:
        return None
    if not isinstance(values, (list, tuple)) or len(values) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f'a kind rule is three integer levels (centre, touched, empty), got '
                          f'{values!r}')
    rule = OracleRule(*values)
    check_rule(rule, gate_labels)
    return rule


def rule_field(rule: OracleRule | None) -> list[int] | None:
    """A rule as a gate's metadata and calibration store it (`kind_rule`: [centre, touched,
    empty] levels; kind_rule reads it back), None for none."""
    return None if rule is None else [rule.centre, rule.touched, rule.empty]


def rule_label(rule: OracleRule | None) -> str | None:
    """A rule as the evaluations' headlines name it ('0_1_3', '1_3_skip'), None for none."""
    return None if rule is None else rule.name.removeprefix('oracle_')


def check_rule(rule: OracleRule | None, gate_labels: str) -> None:
    """ConfigError for a kind rule given with a gate that did not learn tile kinds."""
    if rule is not None and gate_labels != 'kinds':
        raise ConfigError(f'a kind rule needs a gate on tile kinds, this gate learnt '
                          f'{gate_labels!r} labels')


OperatingPoint = tuple[float, OracleRule | None]  # (caution, kind rule or None)


def gate_operating_point(meta: Mapping[str, Any]) -> OperatingPoint:
    """(caution, kind rule or None) a gate checkpoint's metadata `meta` ships."""
    return (float(meta.get('caution', 0.0)),
            kind_rule(meta.get('kind_rule'), meta.get('labels', 'paper')))
