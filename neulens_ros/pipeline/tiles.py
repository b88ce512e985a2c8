"""Cutting tiles out of a frame on the headset (what gets transmitted)."""

from __future__ import annotations

import numpy as np

from neulens_ros.errors import GeometryError


def crop_tile(image: np.ndarray, rect: np.ndarray | tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of `rect` (x0, y0, x1, y1; x1, y1 exclusive) from image [H, W, C].

    Parts of the rectangle outside the image are zero (the halo's zero padding), so the tile
    is always exactly (y1 - y0, x1 - x0, C). A view when the rectangle lies inside the image.
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in rect)
    if x1 <= x0 or y1 <= y0:
        raise GeometryError(f'empty tile rectangle {(x0, y0, x1, y1)}')
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise GeometryError(f'tile rectangle {(x0, y0, x1, y1)} lies outside the '
                            f'{width}x{height} image')
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return image[y0:y1, x0:x1]
    tile = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], dtype=image.dtype)
    in_image, in_tile = overlap(rect, width, height)
    tile[in_tile] = image[in_image]
    return tile


def overlap(rect: np.ndarray | tuple[int, int, int, int], width: int, height: int
            ) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """(rows, cols) slices of the part of `rect` (x0, y0, x1, y1) inside a width x height
    image: in image coordinates, and the same pixels in the rectangle's own coordinates."""
    x0, y0, x1, y1 = (int(v) for v in rect)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return ((slice(sy0, sy1), slice(sx0, sx1)),
            (slice(sy0 - y0, sy1 - y0), slice(sx0 - x0, sx1 - x0)))


def crop_tiles(image: np.ndarray, rects: np.ndarray,
               indices: tuple[int, ...] | None = None) -> dict[int, np.ndarray]:
    """{tile index: tile} for `indices` (default all) of rects [T, 4]."""
    chosen = range(len(rects)) if indices is None else indices
    return {int(i): crop_tile(image, rects[i]) for i in chosen}
