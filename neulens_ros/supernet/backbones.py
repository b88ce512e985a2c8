"""Slimmable classification backbones: ResNet-50 (bottleneck) and MobileNetV2-style.

The ResNet-50 keeps torchvision's module names (conv1, bn1, layer1.0.conv1, ...,
downsample.0/1, fc), so `pretrained.load_torchvision_resnet` maps a torchvision state_dict
onto it: every BatchNorm's weights go to each level's BatchNorm, sliced to that level's width
(the usual starting point before supernet training). Fronts are the stem plus the first P stages
(`resnet_front(model, 'layer2')`); P options 'layer1', 'layer2', 'layer3' are the paper's
11, 23 and 41 layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from neulens_ros.errors import ConfigError
from neulens_ros.supernet.slim import SlimBatchNorm2d, SlimConv2d, slim_shortcut

RESNET_P_OPTIONS = ('layer1', 'layer2', 'layer3')
RESNET_P_LAYERS = {'layer1': 11, 'layer2': 23, 'layer3': 41}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = SlimConv2d(cin, width, 1, 1, 0, bias=False)
        self.bn1 = SlimBatchNorm2d(width)
        self.conv2 = SlimConv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = SlimBatchNorm2d(width)
        self.conv3 = SlimConv2d(width, cout, 1, 1, 0, bias=False)
        self.bn3 = SlimBatchNorm2d(cout)
        self.downsample = slim_shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = SlimConv2d(3, 64, 7, 2, 3, bias=False, fixed_in=True)
        self.bn1 = SlimBatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2),
                                                     (512, 3, 2)), start=1):
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
                cin = width * Bottleneck.expansion
            setattr(self, f'layer{i}', nn.Sequential(*layers))
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet_front(model: ResNet50, p: str) -> nn.Sequential:
    if p not in RESNET_P_OPTIONS:
        raise ConfigError(f'split point {p!r} is not one of {RESNET_P_OPTIONS}')
    stages = [model.layer1, model.layer2, model.layer3][:RESNET_P_OPTIONS.index(p) + 1]
    return nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, *stages)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 project; residual when it fits."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = nn.Sequential(SlimConv2d(cin, hidden, 1, 1, 0, bias=False),
                                    SlimBatchNorm2d(hidden), nn.ReLU6(inplace=True))
        self.depthwise = nn.Sequential(SlimConv2d(hidden, hidden, 3, stride, 1, bias=False,
                                                  groups=hidden),
                                       SlimBatchNorm2d(hidden), nn.ReLU6(inplace=True))
        self.project = nn.Sequential(SlimConv2d(hidden, cout, 1, 1, 0, bias=False),
                                     SlimBatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


def mobilenet_front(stages: int = 3) -> nn.Sequential:
    """A MobileNetV2-style front: stem conv + the first `stages` inverted-residual stages."""
    config = ((16, 1, 1, 1), (24, 2, 2, 6), (32, 3, 2, 6), (64, 4, 2, 6))[:stages]
    layers: list[nn.Module] = [nn.Sequential(SlimConv2d(3, 32, 3, 2, 1, bias=False,
                                                        fixed_in=True),
                                             SlimBatchNorm2d(32), nn.ReLU6(inplace=True))]
    cin = 32
    for cout, blocks, stride, expand in config:
        for b in range(blocks):
            layers.append(InvertedResidual(cin, cout, stride if b == 0 else 1, expand))
            cin = cout
    return nn.Sequential(*layers)

