"""Tile geometry (paper Eq. 2-3): which input rectangle each tile needs and where its output
lands in the stitched feature map.

The front is reduced to its chain of sliding windows (kernel F, stride S, padding p) along the
main path; strided shortcuts see a subset of the same window. The frame's output size follows
from the chain; the output is split into k x k owned blocks (row-major tile t = row * k + col),
and each tile computes a rectangle that contains its block:

- 'paper': all tiles have the same input size w_in = (w_o - 1) S - 2p + F chained backwards
  from w_o = ceil(W_out / k), shifted by dx = (W_in - w_in) / (k - 1) to cover the frame; each
  tile is run as its own zero-padded image. Almost no extra compute; the border effect at tile
  seams is what training on tiles absorbs.
- 'exact': the owned block plus the receptive-field halo, zero padding only at the true image
  border, so the stitched output equals the full-frame output (validation, pretrained models).
- an integer h: the owned block plus h input pixels on each side, between the two.
Tile starts are multiples of the total stride so every tile samples the frame's own grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from neulens_ros.errors import ConfigError, UnsupportedLayerError
from neulens_ros.supernet.slim import SlimBatchNorm2d

Window = tuple[int, int, int]  # kernel F, stride S, padding p (one axis)
# Layers that do not move pixels (elementwise or per-channel).
PASSTHROUGH = (nn.BatchNorm2d, SlimBatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish,
               nn.Sigmoid, nn.Identity, nn.Dropout)
CONTAINERS = (nn.Sequential, nn.ModuleList)


def _pair(v: int | tuple[int, ...]) -> int:
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise UnsupportedLayerError(f'non-square window {v} is not supported')
        return int(v[0])
    return int(v)


def window_chain(front: nn.Module) -> list[Window]:
    """The (F, S, p) chain of the front's main path, in execution order.

    Convolutions and max/avg pooling count; shortcut branches named 'downsample' are skipped
    (their window lies inside the main path's); any other module with parameters or unknown
    behaviour raises UnsupportedLayerError naming it.
    """
    chain: list[Window] = []
    for name, module in front.named_modules():
        if any(part == 'downsample' for part in name.split('.')):
            continue
        if isinstance(module, nn.Conv2d):
            if _pair(module.dilation) != 1:
                raise UnsupportedLayerError(f'{name}: dilated convolution is not supported')
            chain.append((_pair(module.kernel_size), _pair(module.stride),
                          _pair(module.padding)))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            chain.append((_pair(module.kernel_size), _pair(module.stride or module.kernel_size),
                          _pair(module.padding)))
        elif isinstance(module, PASSTHROUGH) or isinstance(module, CONTAINERS):
            continue
        elif next(module.children(), None) is None:
            raise UnsupportedLayerError(
                f'layer {name or type(module).__name__} ({type(module).__name__}) cannot be '
                'tiled: fronts may contain Conv2d, BatchNorm, pooling, elementwise '
                'activations and residual blocks')
    if not chain:
        raise UnsupportedLayerError('the front has no convolution or pooling layer')
    return chain


def total_stride(chain: list[Window]) -> int:
    return math.prod(s for _, s, _ in chain)


def output_size(chain: list[Window], size: int) -> int:
    """Output length of an input of `size` pixels (PyTorch's floor rule)."""
    for f, s, p in chain:
        size = (size + 2 * p - f) // s + 1
    return size


def input_span(chain: list[Window], first: int, last: int) -> tuple[int, int]:
    """Input pixels [a, b] (inclusive) that output positions [first, last] depend on."""
    for f, s, p in reversed(chain):
        first, last = first * s - p, last * s - p + f - 1
    return first, last


def paper_input_size(chain: list[Window], out: int) -> int:
    """w_in = (w_o - 1) S - 2p + F chained backwards (paper Eq. 2)."""
    for f, s, p in reversed(chain):
        out = (out - 1) * s - 2 * p + f
    return out


@dataclass(frozen=True)
class TileGrid:
    """Where each of the k x k tiles reads its input and writes its output.

    in_rects [T, 4] x0 y0 x1 y1 in input pixels (exclusive ends; may extend past the frame
    in 'exact' and integer modes only where it is clipped... never: ends are clipped to the
    frame, except that 'paper' tiles always have the same size); out_rects [T, 4] owned block
    in the stitched map; crops [T, 4] the owned block inside the tile's own output.
    """

    width: int  # frame (network input) size, pixels
    height: int
    k: int
    halo: str  # 'paper', 'exact' or str(int)
    stride: int  # total stride of the front
    out_width: int  # stitched feature map size
    out_height: int
    in_rects: np.ndarray = field(repr=False)
    out_rects: np.ndarray = field(repr=False)
    crops: np.ndarray = field(repr=False)

    def tile_input_size(self, t: int) -> tuple[int, int]:
        x0, y0, x1, y1 = self.in_rects[t]
        return int(x1 - x0), int(y1 - y0)


def _split(total: int, k: int) -> list[tuple[int, int]]:
    """k owned blocks [a, b) of `total` positions, as equal as possible."""
    edges = [round(i * total / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1]) for i in range(k)]


def _axis(chain: list[Window], size: int, k: int, halo: str
          ) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
    """One axis: (output size, input ranges [a, b), owned output blocks [a, b))."""
    stride = total_stride(chain)
    out = output_size(chain, size)
    blocks = _split(out, k)
    if min(b - a for a, b in blocks) < 1:
        raise ConfigError(f'{size} px gives {out} output positions: too few for k={k}')
    ranges = []
    if halo == 'paper':
        w_in = min(size, paper_input_size(chain, math.ceil(out / k)))
        for i, (a, b) in enumerate(blocks):
            start = 0 if k == 1 else round(i * (size - w_in) / (k - 1))
            start = min(start // stride * stride, a * stride)  # on the frame's grid
            while output_size(chain, w_in) + start // stride < b:  # must reach the block end
                w_in += stride
            ranges.append((start, start + w_in))
        # equal sizes: widen every tile to the largest need
        w_max = max(e - s for s, e in ranges)
        ranges = [(s, s + w_max) for s, _ in ranges]
    else:
        pad = None if halo == 'exact' else int(halo)
        for a, b in blocks:
            lo, hi = input_span(chain, a, b - 1)
            if pad is not None:
                lo, hi = a * stride - pad, b * stride - 1 + pad
            lo = max(0, lo // stride * stride)
            hi = min(size, hi + 1)
            ranges.append((lo, hi))
    return out, ranges, blocks


def check_halo(halo: str | int) -> str:
    """`halo` as a mode string, pixels written plainly ('02' -> '2', so equal halos compare
    equal); ConfigError unless it is 'paper', 'exact' or a non-negative integer (pixels)."""
    halo = str(halo)
    if halo in ('paper', 'exact'):
        return halo
    if not (halo.isascii() and halo.isdecimal()):
        raise ConfigError(f"halo must be 'paper', 'exact' or a non-negative integer, got "
                          f'{halo!r}')
    return str(int(halo))


def tile_grid(front: nn.Module | list[Window], width: int, height: int, k: int,
              halo: str | int = 'paper') -> TileGrid:
    """The k x k tile geometry of `front` on a width x height input."""
    halo = check_halo(halo)
    if k < 1:
        raise ConfigError(f'k must be >= 1, got {k}')
    chain = front if isinstance(front, list) else window_chain(front)
    stride = total_stride(chain)
    out_w, xr, xb = _axis(chain, width, k, halo)
    out_h, yr, yb = _axis(chain, height, k, halo)
    in_rects, out_rects, crops = [], [], []
    for r in range(k):
        for c in range(k):
            (x0, x1), (y0, y1) = xr[c], yr[r]
            (ox0, ox1), (oy0, oy1) = xb[c], yb[r]
            in_rects.append((x0, y0, x1, y1))
            out_rects.append((ox0, oy0, ox1, oy1))
            cx, cy = ox0 - x0 // stride, oy0 - y0 // stride
            crops.append((cx, cy, cx + ox1 - ox0, cy + oy1 - oy0))
    return TileGrid(width=width, height=height, k=k, halo=halo, stride=stride,
                    out_width=out_w, out_height=out_h,
                    in_rects=np.asarray(in_rects, np.int32),
                    out_rects=np.asarray(out_rects, np.int32),
                    crops=np.asarray(crops, np.int32))
