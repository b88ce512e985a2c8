"""The pipeline's detector: a CenterNet-style single-stage detector on a slim ResNet.

Why CenterNet: one heatmap peak per object, no anchors and no NMS beyond a 3x3 max-pool, so the
head is cheap, the decoder is a few tensor ops, and boxes come straight from the stitched
feature map (the tile-level front does not interact with box matching).

Layout (`DetectorConfig` defaults: 256 x 192 input):
    stem    conv 7x7/2 + BN + ReLU + max-pool 3x3/2           -> stride 4,  24 ch
    layer1  2 basic blocks                                     -> stride 4,  24 ch
    layer2  2 basic blocks, first strided                      -> stride 8,  48 ch
    layer3  2 basic blocks, first strided                      -> stride 16, 64 ch
    layer4  2 basic blocks, first strided                      -> stride 32, 96 ch
    neck    FPN-style top-down path over layer2..4 -> stride 8, then (output_stride 4) x2 up,
            24 ch
    heads   one shared 3x3 conv, then 1x1 heatmap (classes), size (w, h), offset (dx, dy)
The widths put most of the computation in the stages that can be tiled (about 70% of the
MACs are in stem..layer2), so per-tile compression moves the frame's total cost. Heads at
output stride 8 read the same features (the neck has no lateral below layer2) at a quarter of
the cells: a wide detector keeps its front dominant that way (train/plan.py, FULL_HARD).
The split point P cuts after a stage: P options are the stages 'stem', 'layer1', 'layer2'
(1, 5 and 10 convolution layers, counting the strided shortcut). Every layer that can be in a
front is slimmable; in the back it runs at full width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from neulens_ros.errors import ConfigError
from neulens_ros.supernet.slim import SlimBatchNorm2d, SlimConv2d, slim_shortcut

STAGES = ('stem', 'layer1', 'layer2', 'layer3', 'layer4')
P_OPTIONS = ('stem', 'layer1', 'layer2')  # where the front (tile-level supernet) may end
P_LAYERS = {'stem': 1, 'layer1': 5, 'layer2': 10}  # conv layers in the front
OUTPUT_STRIDES = (4, 8)  # of the heads


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture of the detector (stored with every checkpoint)."""

    num_classes: int = 5
    input_width: int = 256  # network input, pixels
    input_height: int = 192
    widths: tuple[int, ...] = (24, 24, 48, 64, 96)  # stem, layer1..layer4 channels
    neck_width: int = 24
    output_stride: int = 4  # of the heads: 4 (an x2 up-sampling after the stride-8 neck) or 8

    def __post_init__(self) -> None:
        if self.num_classes < 1 or len(self.widths) != 5 or min(self.widths) < 4 \
                or self.neck_width < 4:
            raise ConfigError(f'invalid detector config {self}')
        if self.output_stride not in OUTPUT_STRIDES:
            raise ConfigError(f'output_stride must be one of {OUTPUT_STRIDES}, got '
                              f'{self.output_stride}')
        if self.input_width % 32 or self.input_height % 32:
            raise ConfigError(f'input size {self.input_width}x{self.input_height} must be a '
                              'multiple of 32 (the stride of layer4)')


class BasicBlock(nn.Module):
    """ResNet basic block built from slimmable layers."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = SlimConv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = SlimBatchNorm2d(cout)
        self.conv2 = SlimConv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = SlimBatchNorm2d(cout)
        self.downsample = slim_shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class Stem(nn.Module):
    def __init__(self, cout: int) -> None:
        super().__init__()
        self.conv = SlimConv2d(3, cout, 7, 2, 3, bias=False, fixed_in=True)
        self.bn = SlimBatchNorm2d(cout)
        self.pool = nn.MaxPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.bn(self.conv(x))))


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class TileDetector(nn.Module):
    """Stages + neck + heads; `front(p)` and `back(p)` split it at a P option."""

    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        super().__init__()
        self.config = config
        widths = config.widths
        self.stem = Stem(widths[0])
        for i in range(1, 5):
            cin, cout = widths[i - 1], widths[i]
            stride = 1 if i == 1 else 2
            setattr(self, f'layer{i}', nn.Sequential(BasicBlock(cin, cout, stride),
                                                     BasicBlock(cout, cout, 1)))
        n = config.neck_width
        self.lateral = nn.ModuleList(nn.Conv2d(c, n, 1) for c in widths[2:4])  # s8, s16
        self.reduce = nn.Conv2d(widths[4], n, 1)
        self.up = nn.ModuleList(conv_bn_relu(n, n) for _ in range(3))
        self.shared = conv_bn_relu(n, n)
        self.heatmap = nn.Conv2d(n, config.num_classes, 1)
        self.size = nn.Conv2d(n, 2, 1)
        self.offset = nn.Conv2d(n, 2, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)  # prior 0.1, as CenterNet

    def stages(self) -> list[nn.Module]:
        return [getattr(self, name) for name in STAGES]

    def front(self, p: str) -> nn.Sequential:
        """The stages up to and including `p` (the tile-level supernet)."""
        if p not in P_OPTIONS:
            raise ConfigError(f'split point {p!r} is not one of {P_OPTIONS}')
        return nn.Sequential(*self.stages()[:STAGES.index(p) + 1])

    def back(self, p: str, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the stages after `p` on the stitched `features` [N, C_p, H/s, W/s], then the
        neck and heads (which read layer2..4, all at or after every P option)."""
        feats = {p: features}
        x = features
        for name in STAGES[STAGES.index(p) + 1:]:
            x = getattr(self, name)(x)
            feats[name] = x
        return self.head(feats)

    def head(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.reduce(feats['layer4'])
        for i, (name, lateral) in enumerate(zip(('layer3', 'layer2'), self.lateral[::-1],
                                                strict=True)):
            x = F.interpolate(x, size=feats[name].shape[-2:], mode='nearest')
            x = self.up[i](x + lateral(feats[name]))
        if self.config.output_stride == 4:
            x = F.interpolate(x, scale_factor=2.0, mode='nearest')
        x = self.up[2](x)  # at the output stride
        x = self.shared(x)
        return {'heatmap': self.heatmap(x), 'size': self.size(x), 'offset': self.offset(x)}

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Untiled, full width: image [N, 3, H, W] normalised -> head outputs at stride 4."""
        feats = {}
        x = image
        for name in STAGES:
            x = getattr(self, name)(x)
            feats[name] = x
        return self.head(feats)
