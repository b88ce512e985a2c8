"""The micro-flow executor: per-level batched fronts over tiles, stitched, then the back.

Tiles of one level (and one size) run as ONE batched call of that level's sub-network; skipped
tiles (level 4) are never computed and their features stay zero; channels a level pruned are
zero in the stitched map. The executor is differentiable, so training runs through it with
mixed per-tile levels. Runners are pluggable per level (eager slimmable front by default, or
an exported static subnet on ONNX Runtime / TensorRT through neulens_ros.runtime).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import lru_cache
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neulens_ros.errors import GeometryError
from neulens_ros.supernet.detector import TileDetector
from neulens_ros.supernet.slim import LEVEL_SKIP, front_out_channels, set_level
from neulens_ros.supernet.tiling import TileGrid, tile_grid, window_chain

Runner = Callable[[torch.Tensor], torch.Tensor]  # [N, 3, h, w] -> [N, C_l, h', w']
# Input normalisation of every model here (ImageNet statistics), applied to 0..255 RGB.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255.0
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255.0


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 or float RGB 0..255 [N, 3, H, W] -> normalised float32."""
    return (images.float() - MEAN) / STD


def crop_frames(images: torch.Tensor, grid: TileGrid) -> list[torch.Tensor]:
    """Tile inputs [N, 3, h, w] for each tile of `grid` from normalised frames [N, 3, H, W];
    parts outside the frame are zero (the same zero padding the full frame gets)."""
    right = max(0, int(grid.in_rects[:, 2].max()) - images.shape[3])
    bottom = max(0, int(grid.in_rects[:, 3].max()) - images.shape[2])
    padded = F.pad(images, (0, right, 0, bottom)) if right or bottom else images
    return [padded[:, :, y0:y1, x0:x1] for x0, y0, x1, y1 in grid.in_rects.tolist()]


class FrontExecutor:
    """Runs a slimmable front over k x k tiles with a level per tile and stitches."""

    def __init__(self, front: nn.Module, runners: Mapping[int, Runner] | None = None,
                 per_tile_calls: bool = False) -> None:
        self.front = front
        self.chain = window_chain(self.front)
        self.channels = front_out_channels(self.front)
        self.runners = dict(runners or {})
        self.per_tile_calls = per_tile_calls
        self.calls: Counter[int] = Counter()  # front calls per level
        self.tiles_run: Counter[int] = Counter()  # tiles computed per level
        self._grid = lru_cache(maxsize=64)(self._make_grid)

    def _make_grid(self, width: int, height: int, k: int, halo: str) -> TileGrid:
        return tile_grid(self.chain, width, height, k, halo)

    def grid(self, width: int, height: int, k: int, halo: str | int = 'paper') -> TileGrid:
        return self._grid(width, height, k, str(halo))

    def run_level(self, level: int, batch: torch.Tensor) -> torch.Tensor:
        self.calls[level] += 1
        self.tiles_run[level] += batch.shape[0]
        runner = self.runners.get(level)
        if runner is not None:
            return runner(batch)
        set_level(self.front, level)
        try:
            return self.front(batch)
        finally:
            set_level(self.front, 0)

    def stitch(self, tiles: Sequence[torch.Tensor], levels: torch.Tensor | np.ndarray,
               grid: TileGrid) -> torch.Tensor:
        """Front features [N, C, Ho, Wo] from tile inputs (tiles[t] = [N, 3, h_t, w_t]) and
        levels [N, T] (or [T] for every frame)."""
        levels = torch.as_tensor(np.asarray(levels), dtype=torch.long)
        n = tiles[0].shape[0]
        if levels.dim() == 1:
            levels = levels.expand(n, -1)
        if levels.shape != (n, grid.k * grid.k) or len(tiles) != grid.k * grid.k:
            raise GeometryError(f'{len(tiles)} tiles and levels {list(levels.shape)} do not '
                                f'match k={grid.k} for {n} frames')
        ref = tiles[0]
        out = ref.new_zeros((n, self.channels, grid.out_height, grid.out_width))
        groups: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
        for b in range(n):
            for t in range(grid.k * grid.k):
                level = int(levels[b, t])
                if level == LEVEL_SKIP:
                    continue
                key = (level, *tiles[t].shape[2:])
                groups[key + ((b, t) if self.per_tile_calls else ())].append((b, t))
        for key, members in groups.items():
            batch = torch.stack([tiles[t][b] for b, t in members])
            feats = self.run_level(key[0], batch)
            for (b, t), feat in zip(members, feats, strict=True):
                cx0, cy0, cx1, cy1 = grid.crops[t].tolist()
                ox0, oy0, ox1, oy1 = grid.out_rects[t].tolist()
                out[b, :feat.shape[0], oy0:oy1, ox0:ox1] = feat[:, cy0:cy1, cx0:cx1]
        return out

class MicroFlowExecutor(FrontExecutor):
    """Runs a TileDetector split at `p`: tiled front, stitch, then the back once."""

    def __init__(self, model: TileDetector, p: str,
                 runners: Mapping[int, Runner] | None = None,
                 per_tile_calls: bool = False) -> None:
        super().__init__(model.front(p), runners, per_tile_calls)
        self.model = model
        self.p = p

    def forward(self, images: torch.Tensor, levels: torch.Tensor | np.ndarray, k: int,
                halo: str | int = 'paper') -> dict[str, torch.Tensor]:
        """Head outputs for normalised frames [N, 3, H, W] with per-tile levels [N, k*k]."""
        grid = self.grid(images.shape[3], images.shape[2], k, halo)
        feats = self.stitch(crop_frames(images, grid), levels, grid)
        return self.model.back(self.p, feats)

    __call__ = forward


def tiles_to_tensors(tiles: Mapping[int, np.ndarray], grid: TileGrid
                     ) -> list[torch.Tensor]:
    """Decoded uint8 tiles ({t: [h, w, 3]}) -> normalised [1, 3, h, w] per tile (zeros for
    tiles not sent); the part of each tile outside the frame is zeroed after normalising,
    matching the zero padding of `crop_frames`."""
    out = []
    for t in range(grid.k * grid.k):
        x0, y0, x1, y1 = grid.in_rects[t].tolist()
        if t not in tiles:
            out.append(torch.zeros(1, 3, y1 - y0, x1 - x0))
            continue
        tile = tiles[t]
        if tile.shape[:2] != (y1 - y0, x1 - x0):
            raise GeometryError(f'tile {t} is {tile.shape[1]}x{tile.shape[0]}, the grid '
                                f'expects {x1 - x0}x{y1 - y0}')
        x = normalise(torch.from_numpy(np.array(tile)).permute(2, 0, 1)[None])  # own copy
        if x1 > grid.width or y1 > grid.height:
            x[:, :, max(0, grid.height - y0):, :] = 0.0
            x[:, :, :, max(0, grid.width - x0):] = 0.0
        out.append(x)
    return out

