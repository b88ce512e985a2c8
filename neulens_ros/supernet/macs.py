"""Multiply-accumulate counts, measured by running the layers on the actual shapes.

Per convolution: MACs = C_out * (C_in / groups) * F^2 * H_out * W_out; pooling counts
C * F^2 * H_out * W_out (the paper's comparison count). With channel slicing at compression c
this is the paper's (1 - c)^2 F^2 D_in D_out w h for inner layers (the RGB input is never
sliced). Counting hooks run on the real module at the real level, so the numbers are exactly
what the executor computes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from neulens_ros.supernet.slim import LEVEL_SKIP, set_level
from neulens_ros.supernet.tiling import TileGrid


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass of `module` on a zero tensor of `input_shape` [1, C, H, W]."""
    total = 0

    def conv_hook(m: nn.Conv2d, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        cin = inputs[0].shape[1]
        groups = cin if getattr(m, 'depthwise', False) else m.groups
        kh, kw = m.kernel_size
        total += out.shape[1] * (cin // groups) * kh * kw * out.shape[2] * out.shape[3]

    def pool_hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        total += out.shape[1] * k * k * out.shape[2] * out.shape[3]

    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            handles.append(m.register_forward_hook(pool_hook))
    try:
        with torch.no_grad():
            module(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
    return int(total)


class MacTable:
    """MACs of a front per (level, tile size) and of the back per P, cached."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._front = lru_cache(maxsize=512)(self._front_macs)

    def _front_macs(self, p: str, level: int, height: int, width: int) -> int:
        # model.front(p) is a new container over the model's own stages: the train/eval
        # state to restore is the model's, not the fresh container's
        front = self.model.front(p)
        was_training = self.model.training
        front.eval()
        set_level(front, level)
        try:
            return count_macs(front, (1, 3, height, width))
        finally:
            set_level(front, 0)
            front.train(was_training)

    def front(self, p: str, level: int, height: int, width: int) -> int:
        return 0 if level == LEVEL_SKIP else self._front(p, level, height, width)

    def frame_front(self, p: str, grid: TileGrid, levels: np.ndarray) -> int:
        """MACs of the tiled front for one frame's levels [k*k]."""
        total = 0
        for t, level in enumerate(np.asarray(levels).tolist()):
            w, h = grid.tile_input_size(t)
            total += self.front(p, int(level), h, w)
        return total

    @lru_cache(maxsize=16)  # noqa: B019 - one table per model, lives as long as it
    def back(self, p: str, height: int, width: int) -> int:
        """MACs of everything after the front on a height x width input."""
        whole = self.untiled(height, width)
        return whole - self._front(p, 0, height, width)

    @lru_cache(maxsize=16)  # noqa: B019
    def untiled(self, height: int, width: int) -> int:
        was_training = self.model.training
        self.model.eval()
        try:
            return count_macs(self.model, (1, 3, height, width))
        finally:
            self.model.train(was_training)
