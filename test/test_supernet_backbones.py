"""ResNet-50 and MobileNetV2-style fronts: exact tiling, MAC counts, torchvision loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neulens_ros.errors import CheckpointError, ConfigError
from neulens_ros.supernet.backbones import (RESNET_P_OPTIONS, ResNet50, mobilenet_front,
                                            resnet_front)
from neulens_ros.supernet.executor import crop_frames
from neulens_ros.supernet.macs import count_macs
from neulens_ros.supernet.pretrained import load_torchvision_resnet
from neulens_ros.supernet.slim import LEVEL_SKIP, set_level
from neulens_ros.supernet.tiling import tile_grid, window_chain


def randomise_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)


@pytest.fixture(scope='module')
def resnet() -> ResNet50:
    torch.manual_seed(0)
    model = ResNet50().eval()
    randomise_bn(model)
    return model


def stitched(front: nn.Module, x: torch.Tensor, k: int, level: int = 0) -> torch.Tensor:
    """Exact-halo tiles run one by one and stitched (the executor's geometry)."""
    grid = tile_grid(window_chain(front), x.shape[3], x.shape[2], k, 'exact')
    set_level(front, level)
    try:
        outs = [front(t) for t in crop_frames(x, grid)]
    finally:
        set_level(front, 0)
    full = torch.zeros(1, outs[0].shape[1], grid.out_height, grid.out_width)
    for t, out in enumerate(outs):
        cx0, cy0, cx1, cy1 = grid.crops[t]
        ox0, oy0, ox1, oy1 = grid.out_rects[t]
        full[:, :, oy0:oy1, ox0:ox1] = out[:, :, cy0:cy1, cx0:cx1]
    return full


@pytest.mark.parametrize('p,size', [('layer1', (72, 56)), ('layer2', (96, 81)),
                                    ('layer3', (112, 97))])
@pytest.mark.parametrize('k', [2, 3, 4])
def test_resnet50_exact_tiles_equal_full_frame(resnet, p: str, size, k: int) -> None:
    front = resnet_front(resnet, p)
    x = torch.randn(1, 3, size[1], size[0])
    with torch.no_grad():
        full = front(x)
        if min(full.shape[2:]) < k:
            pytest.skip('output smaller than the grid')
        tiled = stitched(front, x, k)
    assert float((tiled - full).abs().max() / full.abs().max()) < 1e-4


@pytest.mark.parametrize('k', [2, 3, 4])
@pytest.mark.parametrize('level', [0, 2])
def test_mobilenet_exact_tiles_equal_full_frame(k: int, level: int) -> None:
    torch.manual_seed(1)
    front = mobilenet_front().eval()
    randomise_bn(front)
    x = torch.randn(1, 3, 97, 129)
    with torch.no_grad():
        set_level(front, level)
        full = front(x)
        set_level(front, 0)
        tiled = stitched(front, x, k, level)
    assert float((tiled[:, :full.shape[1]] - full).abs().max() / full.abs().max()) < 1e-4


def test_resnet50_macs_are_the_known_4_1_gmacs(resnet) -> None:
    macs = count_macs(resnet, (1, 3, 224, 224))
    assert abs(macs - 4.1e9) / 4.1e9 < 0.01  # (convs + fc + pools, torchvision's count)
    front = resnet_front(resnet, 'layer3')
    set_level(front, 2)  # c = 0.5: inner layers cost about a quarter
    half = count_macs(front, (1, 3, 224, 224))
    set_level(front, 0)
    full = count_macs(front, (1, 3, 224, 224))
    assert 0.25 < half / full < 0.30  # the stem's RGB input is not sliced
    assert LEVEL_SKIP == 4


def test_resnet_p_options_and_torchvision_loading(resnet) -> None:
    assert RESNET_P_OPTIONS == ('layer1', 'layer2', 'layer3')
    with pytest.raises(ConfigError):
        resnet_front(resnet, 'layer4')
    # a torchvision-style state_dict: plain BatchNorm keys
    tv = {}
    for key, value in resnet.state_dict().items():
        if '.bn.' in key:
            module, rest = key.split('.bn.', 1)
            level, leaf = rest.split('.', 1)
            if level == '0':
                tv[f'{module}.{leaf}'] = value.clone() + (0.1 if leaf == 'weight' else 0.0)
        else:
            tv[key] = value.clone()
    model = ResNet50()
    load_torchvision_resnet(model, tv)
    torch.testing.assert_close(model.bn1.bn[2].weight, tv['bn1.weight'][:32])
    torch.testing.assert_close(model.layer1[0].bn1.bn[0].running_var,
                               tv['layer1.0.bn1.running_var'])
    tv['extra.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointError, match='extra.weight'):
        load_torchvision_resnet(ResNet50(), tv)
    del tv['extra.weight'], tv['fc.bias']
    with pytest.raises(CheckpointError, match='fc.bias'):
        load_torchvision_resnet(ResNet50(), tv)
