"""CGG, the compression guiding gate (NeuLens section 4.4): per tile, one of R = 5 levels.

Each tile's content (its cell of the k x k partition of the network input) is resized to
28 x 28 and scored by a tiny CNN: Conv2d(3, 64, 7, stride 4) + ReLU + 2x2 max-pool + one
linear layer -> R logits. One gate serves every k and P: it looks at content, not geometry.
The chosen level is the arg-max; its softmax probability is the confidence the compression
level gear (CLG) uses to pick which tiles to raise first.

Beyond the paper, `context` > 0 adds the neighbouring tiles: each tile's pooled features are
reduced to `context` channels, laid out on the k x k grid and mixed by one 3 x 3 convolution
(zero padding at the frame's border), and the level is read from the tile's own reduced
features beside the mixed ones. Whether a tile only touches an object centred next door, and
whether a shape is a whole object or a piece of clutter, shows in the neighbours; a gate
trained on ground-truth tile kinds (gate/kind_labels.py) tells them apart better with it
(docs/training.md). The extra work is one small matrix product and one 3 x 3 convolution on a
k x k grid per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neulens_ros.data.resize import box_resize
from neulens_ros.errors import ConfigError
from neulens_ros.levels import NUM_LEVELS

GATE_INPUT = 28  # pixels, square tile input of the gate
# ImageNet statistics; the gate is trained on inputs normalised this way.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# 0..255 -> ImageNet-normalised, one multiply-add: x / 255 / std - mean / std
_SCALE = (1.0 / (255.0 * torch.tensor(STD))).view(1, 3, 1, 1)
_SHIFT = (-torch.tensor(MEAN) / torch.tensor(STD)).view(1, 3, 1, 1)
# [T, 3, 28, 28] uint8 gate tiles (`gate_tiles`) -> [T, R] logits: the module behind
# normalise_tiles, or its ONNX Runtime twin with the normalisation in its graph (gate/runtime.py)
GateNet = Callable[[np.ndarray], torch.Tensor]


class CompressionGuidingGate(nn.Module):
    """[T, 3, 28, 28] normalised tiles -> [T, R] level logits.

    With `context` > 0 the T = k*k tiles are one frame's, row-major (as `gate_inputs` gives
    them), and each tile's logits also see its neighbours on the grid.
    """

    def __init__(self, num_levels: int = NUM_LEVELS, channels: int = 64, context: int = 0
                 ) -> None:
        super().__init__()
        if num_levels < 2 or channels < 1 or context < 0:
            raise ConfigError(f'gate needs >= 2 levels, >= 1 channel and context >= 0, got '
                              f'{num_levels}, {channels}, {context}')
        self.context = context
        self.conv = nn.Conv2d(3, channels, kernel_size=7, stride=4)  # [T, 64, 6, 6]
        self.pool = nn.MaxPool2d(2)  # [T, 64, 3, 3]
        if context:
            self.reduce = nn.Linear(channels * 9, context)  # [T, C]
            self.mix = nn.Conv2d(context, context, kernel_size=3, padding=1)  # [1, C, k, k]
            self.fc = nn.Linear(2 * context, num_levels)  # own + mixed -> [T, R]
        else:
            self.fc = nn.Linear(channels * 9, num_levels)  # [T, R]

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        """[T, 3, 28, 28] -> [T, R]: one frame's tiles (any tiles without context)."""
        if not self.context:
            return self.fc(self._features(tiles))
        return self.frames(tiles[None])[0]

    def frames(self, tiles: torch.Tensor) -> torch.Tensor:
        """[N, T, 3, 28, 28] the tiles of N frames -> [N, T, R]."""
        n, t = tiles.shape[:2]
        x = self._features(tiles.flatten(0, 1))  # [N*T, 576]
        if not self.context:
            return self.fc(x).view(n, t, -1)
        k = math.isqrt(t)
        if k * k != t:
            raise ConfigError(f'a gate with context scores the k*k tiles of a frame, got {t} '
                              f'tiles')
        own = F.relu(self.reduce(x))  # [N*T, C]
        grid = own.view(n, k, k, self.context).permute(0, 3, 1, 2)  # row-major -> [N, C, k, k]
        mixed = F.relu(self.mix(grid)).permute(0, 2, 3, 1).reshape(n * t, self.context)
        return self.fc(torch.cat([own, mixed], dim=1)).view(n, t, -1)

    def _features(self, tiles: torch.Tensor) -> torch.Tensor:
        """[T, 3, 28, 28] -> [T, 576] pooled features."""
        return torch.flatten(self.pool(F.relu(self.conv(tiles))), 1)


def gate_tiles(image: np.ndarray, k: int) -> np.ndarray:
    """[H, W, 3] uint8 network input -> [k*k, 3, 28, 28] uint8 gate tiles, row-major.

    One area (box) resize of the whole image to 28k x 28k in uint8 (data/resize.py, the filter
    the pipeline resizes camera frames with), split into k x k tiles: each tile is its cell of
    the k x k partition resized to 28 x 28, in one call instead of k*k (where a cell border
    falls inside a pixel, the box filter weighs that pixel into both cells by its share).
    Resizing the 8-bit image reads a quarter of the bytes of a float one and took about half
    the time of PyTorch's adaptive pooling (docs/training.md).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ConfigError(f'gate expects an [H, W, 3] uint8 image, got {image.dtype} '
                          f'{tuple(image.shape)}')
    height, width = image.shape[:2]
    if k < 1 or k > min(width, height):
        raise ConfigError(f'k={k} does not fit a {width}x{height} image')
    side = GATE_INPUT * k
    small = box_resize(image, (side, side))
    return small.reshape(k, GATE_INPUT, k, GATE_INPUT, 3).transpose(0, 2, 4, 1, 3).reshape(
        k * k, 3, GATE_INPUT, GATE_INPUT)


def normalise_tiles(tiles: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[..., 3, 28, 28] uint8 gate tiles -> float, ImageNet-normalised."""
    x = tiles if isinstance(tiles, torch.Tensor) else torch.from_numpy(np.asarray(tiles))
    return x.float() * _SCALE + _SHIFT


def gate_inputs(image: np.ndarray, k: int) -> torch.Tensor:
    """[H, W, 3] uint8 network input -> [k*k, 3, 28, 28] normalised gate inputs, row-major
    (`gate_tiles`, normalised)."""
    return normalise_tiles(gate_tiles(image, k))


@dataclass(frozen=True)
class GateOutput:
    """The gate's choice for one frame at one k."""

    levels: np.ndarray  # [k*k] int, arg-max level per tile
    confidences: np.ndarray  # [k*k] float, softmax probability of that level


@torch.inference_mode()
def run_gate(gate: GateNet, image: np.ndarray, k: int, caution: float = 0.0) -> GateOutput:
    """Levels and confidences for every tile of `image` ([H, W, 3] uint8) at `k`; `gate` is
    the module's GateNet (gate/runtime.py `gate_net`).

    `caution` lowers the logit of level l by caution * l before the choice: 0 is the gate as
    trained; positive values trade compute for accuracy, negative ones accuracy for compute
    (calibrated after training, see gate/calibration.py, and stored with the shipped gate).
    """
    logits = gate(gate_tiles(image, k))  # [k*k, R]
    if caution:
        logits = logits - caution * torch.arange(logits.shape[1], dtype=logits.dtype)
    probs = torch.softmax(logits, dim=1)
    conf, levels = probs.max(dim=1)
    return GateOutput(levels=levels.numpy().astype(np.int64), confidences=conf.numpy())
