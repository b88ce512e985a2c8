"""Pretrained torchvision-format backbones sliced into the supernet's levels."""

from pathlib import Path

import pytest
import torch

from neulens_ros.errors import CheckpointError
from neulens_ros.supernet.backbones import mobilenet_front
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.supernet.pretrained import (load_backbone_file, load_backbone_weights,
                                             to_torchvision, torchvision_names)
from neulens_ros.supernet.slim import level_width

WIDE = DetectorConfig(widths=(64, 64, 128, 256, 512))  # resnet18/34 widths


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with every tensor random (so a copy cannot pass by matching defaults)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
    return model


def test_names_map_both_ways() -> None:
    names = torchvision_names(TileDetector())
    assert names['stem.conv.weight'] == ('conv1.weight', None)
    assert names['stem.bn.bn.2.running_var'] == ('bn1.running_var', 2)
    assert names['layer2.0.downsample.1.bn.3.bias'] == ('layer2.0.downsample.1.bias', 3)
    assert names['layer4.1.conv2.weight'] == ('layer4.1.conv2.weight', None)
    assert not any(k.startswith(('heatmap', 'lateral', 'shared')) for k in names)
    mobile = torchvision_names(mobilenet_front())
    assert mobile['0.0.weight'] == ('features.0.0.weight', None)
    assert mobile['1.depthwise.0.weight'] == ('features.1.conv.0.0.weight', None)
    assert '1.expand.0.weight' not in mobile  # torchvision's t=1 block has no expand conv
    assert mobile['2.expand.1.bn.1.weight'] == ('features.2.conv.0.1.weight', 1)
    assert mobile['6.project.0.weight'] == ('features.6.conv.2.weight', None)


@pytest.mark.parametrize('make', [lambda: TileDetector(WIDE), mobilenet_front],
                         ids=['resnet18', 'mobilenet_v2'])
def test_wide_weights_are_sliced_into_every_level(make, tmp_path: Path) -> None:
    source = _randomised(make())
    tv = to_torchvision(source)
    tv['fc.weight'] = torch.zeros(1000, 512)  # the classifier: no counterpart
    path = tmp_path / 'backbone.pth'
    torch.save(tv, path)
    target = TileDetector() if isinstance(source, TileDetector) else mobilenet_front()
    report = load_backbone_file(target, path)
    own = target.state_dict()
    checked = 0
    for key, (name, _) in torchvision_names(target).items():
        expected = tv[name][tuple(slice(0, n) for n in own[key].shape)]
        torch.testing.assert_close(own[key], expected)
        checked += 1
    assert checked == len(torchvision_names(target))
    assert 'fc.weight: no counterpart in the supernet' in report.ignored
    assert report.sliced and not report.not_loaded
    assert 'ignored: fc.weight' in report.describe()


def test_levels_take_their_first_channels() -> None:
    source = _randomised(TileDetector(WIDE))
    tv = to_torchvision(source)
    model = TileDetector()
    load_backbone_weights(model, tv)
    for level, bn in enumerate(model.stem.bn.bn):
        width = level_width(24, level)
        torch.testing.assert_close(bn.running_mean, tv['bn1.running_mean'][:width])
        torch.testing.assert_close(bn.weight, tv['bn1.weight'][:width])
    torch.testing.assert_close(model.layer2[0].conv1.weight,
                               tv['layer2.0.conv1.weight'][:48, :24])
    heads = TileDetector().heatmap.weight  # outside the backbone: untouched
    assert heads.shape == model.heatmap.weight.shape


def test_deeper_resnet_blocks_and_bad_shapes_are_listed_as_ignored() -> None:
    tv = to_torchvision(_randomised(TileDetector(WIDE)))
    tv['layer1.2.conv1.weight'] = torch.zeros(64, 64, 3, 3)  # resnet34's third block
    tv['layer3.0.conv1.weight'] = torch.zeros(256, 128, 5, 5)  # another kernel
    tv['layer4.0.conv2.weight'] = torch.zeros(8, 8, 3, 3)  # narrower than the supernet
    model = TileDetector()
    before = model.layer3[0].conv1.weight.clone()
    report = load_backbone_weights(model, tv)
    ignored = '\n'.join(report.ignored)
    assert 'layer1.2.conv1.weight: no counterpart' in ignored
    assert 'layer3.0.conv1.weight: (256, 128, 5, 5) cannot be sliced' in ignored
    assert 'layer4.0.conv2.weight: (8, 8, 3, 3) cannot be sliced' in ignored
    assert set(report.not_loaded) == {'layer3.0.conv1.weight', 'layer4.0.conv2.weight'}
    torch.testing.assert_close(model.layer3[0].conv1.weight, before)


def test_same_size_weights_are_used_as_they_are() -> None:
    source = _randomised(TileDetector())
    report = load_backbone_weights(TileDetector(), to_torchvision(source))
    assert 'conv1.weight' in report.used and 'layer1.0.conv1.weight' in report.used
    assert any(s.startswith('bn1.weight: (24,) -> ') for s in report.sliced)  # levels 1..3


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match='not found'):
        load_backbone_file(TileDetector(), tmp_path / 'none.pth')


@pytest.mark.parametrize('content', [[torch.zeros(3)], {}, {'conv1.weight': 3}, 'text'],
                         ids=['list', 'empty', 'not-tensors', 'not-torch'])
def test_not_a_state_dict(content, tmp_path: Path) -> None:
    path = tmp_path / 'bad.pth'
    if content == 'text':
        path.write_text('not a torch file')
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_backbone_file(TileDetector(), path)


def test_no_matching_keys(tmp_path: Path) -> None:
    path = tmp_path / 'other.pth'
    torch.save({'encoder.block.weight': torch.zeros(3, 3)}, path)
    with pytest.raises(CheckpointError, match='none of its 1 keys'):
        load_backbone_file(TileDetector(), path)
    with pytest.raises(CheckpointError, match='none of its'):  # MobileNetV2 into a ResNet
        load_backbone_weights(TileDetector(), to_torchvision(mobilenet_front()))


@pytest.mark.parametrize('extra', [[], ['--detector', 'neulens_detector']],
                         ids=['missing-file', 'with-detector'])
def test_train_cli_rejects_bad_backbone_weights(extra: list[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    from neulens_ros.tools.train import main
    missing = tmp_path / 'resnet18.pth'
    assert main(['--work', str(tmp_path / 'work'), '--backbone-weights', str(missing),
                 *extra]) == 2
    err = capsys.readouterr().err
    assert (f'{missing} not found' if not extra else 'give one of them') in err
    assert not (tmp_path / 'work').exists()  # stopped before any work
