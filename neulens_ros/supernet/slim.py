"""Slimmable layers: one set of weights, five compression levels by channel slicing.

Level l in 0..4 has compression c = l / 4 and keeps `level_width(C, l)` channels of a layer
with C output channels: the FIRST channels in stored order (supernet training teaches the
first channels to carry the most; converting a pretrained model by channel importance is not
implemented). Level 4 is SKIP: the tile is neither computed nor sent, so no layer is ever
run at level 4.

Normalisation is switchable, as in Slimmable Networks: each level has its own BatchNorm
(statistics and affine), because the mean and variance of a channel depend on how many
channels fed it; the convolution weights are shared.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from neulens_ros.errors import ConfigError
from neulens_ros.levels import COMPUTED_LEVELS, LEVEL_SKIP, NUM_LEVELS  # noqa: F401 - re-exported



def level_width(channels: int, level: int, divisor: int = 4) -> int:
    """Channels kept at `level`: (1 - level/4) * channels rounded to `divisor` (>= divisor,
    and never more than `channels`)."""
    if not 0 <= level < LEVEL_SKIP:
        raise ConfigError(f'level {level} is not a computed level (0..{LEVEL_SKIP - 1})')
    keep = (1.0 - level / 4.0) * channels
    rounded = max(divisor, int(keep + divisor / 2) // divisor * divisor)
    return min(channels, rounded)


class SlimConv2d(nn.Conv2d):
    """Conv2d whose output channels are sliced to the current level; the input channel count
    follows the incoming tensor (the previous layer's slice), except for `fixed_in` layers
    (the RGB stem)."""

    def __init__(self, *args, fixed_in: bool = False, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.fixed_in = fixed_in
        self.level = 0
        self.depthwise = self.groups > 1
        if self.depthwise and self.groups != self.in_channels:
            raise ConfigError('SlimConv2d supports groups = 1 or depthwise (groups = in)')

    def out_width(self, level: int | None = None) -> int:
        return level_width(self.out_channels, self.level if level is None else level)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, Cin', H, W] -> [N, Cout', H', W']
        out_ch = self.out_width()
        in_ch = x.shape[1]
        if self.depthwise:
            weight = self.weight[:in_ch]
            groups = in_ch
        else:
            weight = self.weight[:out_ch, :in_ch]
            groups = 1
        bias = None if self.bias is None else self.bias[:weight.shape[0]]
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


class SlimBatchNorm2d(nn.Module):
    """One BatchNorm2d per computed level (private statistics and affine parameters)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.level = 0
        self.bn = nn.ModuleList(nn.BatchNorm2d(level_width(channels, lv))
                                for lv in COMPUTED_LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn[self.level](x)


def set_level(module: nn.Module, level: int) -> None:
    """Run every slimmable layer inside `module` at `level` (0..3)."""
    if not 0 <= level < LEVEL_SKIP:
        raise ConfigError(f'cannot run level {level}: levels 0..{LEVEL_SKIP - 1} are '
                          f'computed, {LEVEL_SKIP} means skip')
    for m in module.modules():
        if isinstance(m, (SlimConv2d, SlimBatchNorm2d)):
            m.level = level


def front_out_channels(front: nn.Module) -> int:
    """Full-width output channels of a front (the last slimmable conv's out_channels)."""
    convs = [m for m in front.modules() if isinstance(m, SlimConv2d)]
    if not convs:
        raise ConfigError('the front has no slimmable convolution')
    return convs[-1].out_channels


def slim_shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """The strided 1x1 projection of a residual block (sliced like the main path), or None
    when the identity fits."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(SlimConv2d(cin, cout, 1, stride, 0, bias=False), SlimBatchNorm2d(cout))
