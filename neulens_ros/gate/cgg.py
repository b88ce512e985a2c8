"""CGG, the compression guiding gate (NeuLens section 4.4): per tile, one of R = 5 levels.

Each tile's content (its cell of the k x k partition of the network input) is resized to
28 x 28 and scored by a tiny CNN: Conv2d(3, 64, 7, stride 4) + ReLU + 2x2 max-pool + one
linear layer -> R logits. One gate serves every k and P: it looks at content, not geometry.
The chosen level is the arg-max; its softmax probability is the confidence the compression
level gear (CLG) uses to pick which tiles to raise first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
GateNet = Callable[[torch.Tensor], torch.Tensor]  # [T, 3, 28, 28] -> [T, R] logits


class CompressionGuidingGate(nn.Module):
    """[T, 3, 28, 28] normalised tiles -> [T, R] level logits."""

    def __init__(self, num_levels: int = NUM_LEVELS, channels: int = 64) -> None:
        super().__init__()
        if num_levels < 2 or channels < 1:
            raise ConfigError(f'gate needs >= 2 levels and >= 1 channel, got {num_levels}, '
                              f'{channels}')
        self.conv = nn.Conv2d(3, channels, kernel_size=7, stride=4)  # [T, 64, 6, 6]
        self.pool = nn.MaxPool2d(2)  # [T, 64, 3, 3]
        self.fc = nn.Linear(channels * 9, num_levels)  # [T, R]

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv(tiles)))
        return self.fc(torch.flatten(x, 1))


def gate_inputs(image: np.ndarray, k: int) -> torch.Tensor:
    """[H, W, 3] uint8 network input -> [k*k, 3, 28, 28] normalised gate inputs, row-major.

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
    tiles = small.reshape(k, GATE_INPUT, k, GATE_INPUT, 3).transpose(0, 2, 4, 1, 3).reshape(
        k * k, 3, GATE_INPUT, GATE_INPUT)  # [k*k, 3, 28, 28] uint8
    return torch.from_numpy(tiles).float() * _SCALE + _SHIFT


@dataclass(frozen=True)
class GateOutput:
    """The gate's choice for one frame at one k."""

    levels: np.ndarray  # [k*k] int, arg-max level per tile
    confidences: np.ndarray  # [k*k] float, softmax probability of that level


@torch.inference_mode()
def run_gate(gate: GateNet, image: np.ndarray, k: int, caution: float = 0.0) -> GateOutput:
    """Levels and confidences for every tile of `image` ([H, W, 3] uint8) at `k`; `gate` is
    the module or its ONNX Runtime twin (gate/runtime.py).

    `caution` lowers the logit of level l by caution * l before the choice: 0 is the gate as
    trained; positive values trade compute for accuracy, negative ones accuracy for compute
    (calibrated after training, see gate/calibration.py, and stored with the shipped gate).
    """
    logits = gate(gate_inputs(image, k))  # [k*k, R]
    if caution:
        logits = logits - caution * torch.arange(logits.shape[1], dtype=logits.dtype)
    probs = torch.softmax(logits, dim=1)
    conf, levels = probs.max(dim=1)
    return GateOutput(levels=levels.numpy().astype(np.int64), confidences=conf.numpy())
