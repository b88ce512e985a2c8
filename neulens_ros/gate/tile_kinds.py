"""Where boxes lie on the tile grid: each tile's *kind*, from the block of the frame it owns.

A tile of the k x k grid owns the block of the network input that the executor stitches from
it (`TileGrid.out_rects` times the front's stride, the last row and column reaching the
frame's edge, so every pixel has one owner). Given boxes in input pixels, a tile is
- CENTRE: it owns the centre of at least one box;
- TOUCHED: it overlaps a box (positive area) but owns no centre;
- EMPTY: it overlaps no box.
The ground-truth oracle (eval/oracle.py) gives levels by the kinds of the true boxes, the
temporal prior (gate/prior.py) by those of the previous frame's detections.
"""

from __future__ import annotations

import numpy as np

from neulens_ros.errors import DataError
from neulens_ros.supernet.tiling import TileGrid

CENTRE, TOUCHED, EMPTY = 0, 1, 2  # tile kinds
KINDS = 3


def owned_blocks(grid: TileGrid) -> np.ndarray:
    """[T, 4] x0 y0 x1 y1 (exclusive ends) the input pixels each tile owns: its block of the
    stitched map times the front's stride, the last row and column reaching the frame's edge
    so every pixel has one owner."""
    owned = grid.out_rects.astype(np.int64) * grid.stride
    owned[owned[:, 2] == owned[:, 2].max(), 2] = grid.width
    owned[owned[:, 3] == owned[:, 3].max(), 3] = grid.height
    return owned


def box_hits(boxes: np.ndarray, owned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([T, M] tile owns box m's centre, [T, M] tile overlaps box m) for the owned blocks
    [T, 4] and boxes [M, 4] x0 y0 x1 y1 (input pixels)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if np.any(boxes[:, 2:] < boxes[:, :2]):
        raise DataError(f'boxes must have x0 <= x1 and y0 <= y1, got {boxes.tolist()}')
    x0, y0, x1, y1 = (owned[:, i, None] for i in range(4))  # [T, 1]
    cx = np.clip((boxes[:, 0] + boxes[:, 2]) / 2, 0, owned[:, 2].max() - 1e-9)  # [M]
    cy = np.clip((boxes[:, 1] + boxes[:, 3]) / 2, 0, owned[:, 3].max() - 1e-9)
    centre = (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)  # [T, M]
    touched = (boxes[:, 0] < x1) & (boxes[:, 2] > x0) & (boxes[:, 1] < y1) & (boxes[:, 3] > y0)
    return centre, touched


def tile_kinds(boxes: np.ndarray, owned: np.ndarray) -> np.ndarray:
    """[T] kind of each owned block [T, 4] given boxes [M, 4] x0 y0 x1 y1 (input pixels)."""
    centre, touched = box_hits(boxes, owned)
    return np.where(centre.any(axis=1), CENTRE, np.where(touched.any(axis=1), TOUCHED, EMPTY))
