"""ARAC supernet: slimmable layers, tile geometry, executor, MAC counting, golden outputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from neulens_ros.errors import ConfigError, UnsupportedLayerError
from neulens_ros.supernet.detector import P_OPTIONS, DetectorConfig, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, crop_frames
from neulens_ros.supernet.macs import MacTable, count_macs
from neulens_ros.supernet.slim import SlimConv2d, level_width, set_level
from neulens_ros.supernet.tiling import check_halo, tile_grid, window_chain

SMALL = DetectorConfig(input_width=128, input_height=96)


@pytest.fixture(scope='module')
def model() -> TileDetector:
    torch.manual_seed(0)
    m = TileDetector(SMALL).eval()
    for mod in m.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m


@pytest.mark.parametrize('channels,level,expected', [(24, 0, 24), (24, 1, 20), (24, 2, 12),
                                                     (24, 3, 8), (64, 3, 16), (4, 3, 4)])
def test_level_width(channels: int, level: int, expected: int) -> None:
    assert level_width(channels, level) == expected
    with pytest.raises(ConfigError):
        level_width(channels, 4)


def test_slim_conv_uses_the_first_channels() -> None:
    conv = SlimConv2d(8, 16, 3, 1, 1, bias=False)
    x = torch.randn(1, 8, 5, 5)
    conv.level = 2
    out = conv(x)
    assert out.shape[1] == 8
    ref = nn.functional.conv2d(x, conv.weight[:8], None, 1, 1)
    torch.testing.assert_close(out, ref)
    with pytest.raises(ConfigError):
        set_level(conv, 4)


@pytest.mark.parametrize('p', P_OPTIONS)
@pytest.mark.parametrize('k', [2, 3, 4])
@pytest.mark.parametrize('size', [(128, 96), (121, 83)])
def test_exact_tiles_equal_the_full_frame(model, p: str, k: int, size) -> None:
    ex = MicroFlowExecutor(model, p)
    x = torch.randn(1, 3, size[1], size[0])
    grid = ex.grid(size[0], size[1], k, 'exact')
    with torch.no_grad():
        full = ex.front(x)
        tiled = ex.stitch(crop_frames(x, grid), np.zeros(k * k, np.int64), grid)
    assert tiled.shape == full.shape
    assert float((tiled - full).abs().max() / full.abs().max()) < 1e-4


@pytest.mark.parametrize('k', [2, 3])
def test_exact_level0_executor_equals_the_model(model, k: int) -> None:
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        ref = model(x)
        out = MicroFlowExecutor(model, 'layer1')(x, np.zeros((2, k * k), np.int64), k, 'exact')
    for key in ref:
        assert float((out[key] - ref[key]).abs().max() / ref[key].abs().max()) < 1e-4


@pytest.mark.parametrize('p', P_OPTIONS)
@pytest.mark.parametrize('k', [2, 3, 4])
def test_paper_tiles_cost_about_the_full_frame_at_vga(p: str, k: int) -> None:
    m = TileDetector(DetectorConfig(input_width=640, input_height=480))
    table = MacTable(m)
    grid = tile_grid(window_chain(m.front(p)), 640, 480, k, 'paper')
    ratio = table.frame_front(p, grid, np.zeros(k * k)) / table.front(p, 0, 480, 640)
    assert 0.9 <= ratio <= 1.1


def test_halo_modes_order_their_overhead(model) -> None:
    chain = window_chain(model.front('layer2'))
    areas = {}
    for halo in ('paper', 8, 'exact'):
        g = tile_grid(chain, 128, 96, 3, halo)
        areas[str(halo)] = int(((g.in_rects[:, 2] - g.in_rects[:, 0])
                                * (g.in_rects[:, 3] - g.in_rects[:, 1])).sum())
    assert areas['paper'] < areas['8'] < areas['exact']


def test_unsupported_layers_are_named() -> None:
    with pytest.raises(UnsupportedLayerError, match='Upsample'):
        window_chain(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Upsample(scale_factor=2)))
    with pytest.raises(UnsupportedLayerError, match='dilated'):
        window_chain(nn.Sequential(nn.Conv2d(3, 8, 3, dilation=2)))
    with pytest.raises(ConfigError, match='halo'):
        tile_grid([(3, 1, 1)], 32, 32, 2, 'wide')


@pytest.mark.parametrize('halo, mode', [('paper', 'paper'), ('exact', 'exact'), (2, '2'),
                                        ('16', '16'), ('02', '2'), ('0', '0')])
def test_halo_modes_are_strings(halo, mode: str) -> None:  # noqa: ANN001
    assert check_halo(halo) == mode


@pytest.mark.parametrize('halo', ['wide', '-2', '2.5', '', -1, 'Paper', '\u00b2', '\u0662'])
def test_bad_halos_are_config_errors(halo) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="halo must be 'paper', 'exact' or a non-negative"):
        check_halo(halo)


def test_skipped_tiles_cost_nothing(model) -> None:
    ex = MicroFlowExecutor(model, 'layer2')
    x = torch.randn(1, 3, 96, 128)
    grid = ex.grid(128, 96, 3)
    levels = np.array([0, 4, 2, 4, 4, 3, 0, 4, 2])
    with torch.no_grad():
        out = ex.stitch(crop_frames(x, grid), levels, grid)
    assert sum(ex.tiles_run.values()) == 5 and set(ex.calls) == {0, 2, 3}
    assert all(v == 1 for v in ex.calls.values())  # one batched call per level
    for t in np.flatnonzero(levels == 4):
        x0, y0, x1, y1 = grid.out_rects[t]
        assert float(out[0, :, y0:y1, x0:x1].abs().max()) == 0.0
    table = MacTable(model)
    assert table.frame_front('layer2', grid, np.full(9, 4)) == 0
    assert table.frame_front('layer2', grid, levels) < table.frame_front(
        'layer2', grid, np.array([0, 0, 2, 0, 0, 3, 0, 0, 2]))


def test_executor_is_differentiable_with_mixed_levels(model) -> None:
    model.train()
    try:
        x = torch.randn(2, 3, 96, 128)
        out = MicroFlowExecutor(model, 'layer1')(x, np.array([[0, 1, 2, 4], [3, 0, 4, 1]]), 2)
        out['heatmap'].sum().backward()
        assert model.stem.conv.weight.grad is not None
        assert float(model.stem.conv.weight.grad.abs().sum()) > 0
    finally:
        model.zero_grad()
        model.eval()


def test_macs_match_hand_computed_values() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, 2, 1, groups=2))
    # conv1: 8*3*9*32*32; pool: 8*4*16*16; conv2: 16*(8/2)*9*8*8
    assert count_macs(net, (1, 3, 32, 32)) == 8 * 3 * 9 * 1024 + 8 * 4 * 256 + 16 * 4 * 9 * 64
    slim = nn.Sequential(SlimConv2d(3, 8, 3, 1, 1, fixed_in=True), SlimConv2d(8, 16, 3, 1, 1))
    set_level(slim, 2)  # c = 0.5: 4 and 8 channels; the RGB input is not sliced
    assert count_macs(slim, (1, 3, 10, 10)) == 4 * 3 * 9 * 100 + 8 * 4 * 9 * 100


# Golden outputs: a seeded detector's head outputs through the executor (paper halo), as
# sum |heatmap - prior bias| + sum |size| + sum |offset|.
GOLDEN_SUMS = {
    ('stem', 2, 0): 117.6852,
    ('stem', 2, 2): 113.4411,
    ('stem', 2, 3): 113.8002,
    ('stem', 3, 0): 117.7651,
    ('stem', 3, 2): 113.5717,
    ('stem', 3, 3): 113.8983,
    ('layer1', 2, 0): 117.4004,
    ('layer1', 2, 2): 113.6793,
    ('layer1', 2, 3): 114.1297,
    ('layer1', 3, 0): 117.7391,
    ('layer1', 3, 2): 113.8723,
    ('layer1', 3, 3): 114.2596,
    ('layer2', 2, 0): 116.9091,
    ('layer2', 2, 2): 113.5944,
    ('layer2', 2, 3): 113.6702,
    ('layer2', 3, 0): 116.846,
    ('layer2', 3, 2): 113.667,
    ('layer2', 3, 3): 113.6933,
}


@pytest.mark.parametrize('p', P_OPTIONS)
@pytest.mark.parametrize('k', [2, 3])
@pytest.mark.parametrize('level', [0, 2, 3])
def test_golden_outputs(p: str, k: int, level: int) -> None:
    torch.manual_seed(1234)
    m = TileDetector(DetectorConfig(input_width=64, input_height=64)).eval()
    x = torch.linspace(-1, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
    with torch.no_grad():
        out = MicroFlowExecutor(m, p)(x, np.full((1, k * k), level), k)
    checksum = float((out['heatmap'].double() + 2.19).abs().sum()
                     + out['size'].double().abs().sum() + out['offset'].double().abs().sum())
    assert checksum == pytest.approx(GOLDEN_SUMS[(p, k, level)], rel=1e-5)


def test_counting_macs_leaves_the_model_in_eval_mode() -> None:
    m = TileDetector(SMALL).eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    table = MacTable(m)
    table.front('layer1', 2, 96, 128)
    table.back('layer2', 96, 128)
    assert not any(mod.training for mod in m.modules())
    with torch.no_grad():
        m(torch.randn(2, 3, 96, 128))
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())


@pytest.mark.parametrize('stride', [4, 8])
@pytest.mark.parametrize('p', P_OPTIONS)
def test_heads_at_the_output_stride(stride: int, p: str) -> None:
    torch.manual_seed(0)
    m = TileDetector(DetectorConfig(input_width=128, input_height=96, output_stride=stride))
    m.eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        ref = m(x)
        tiled = MicroFlowExecutor(m, p)(x, np.zeros((2, 9), np.int64), 3, 'exact')
    for key, channels in (('heatmap', 5), ('size', 2), ('offset', 2)):
        assert ref[key].shape == (2, channels, 96 // stride, 128 // stride)
        assert float((tiled[key] - ref[key]).abs().max() / ref[key].abs().max()) < 1e-4


def test_stride8_heads_save_the_stride4_convolutions() -> None:
    config = DetectorConfig()
    macs = {s: MacTable(TileDetector(replace(config, output_stride=s))).untiled(192, 256)
            for s in (4, 8)}
    n, outputs = config.neck_width, config.num_classes + 4  # heatmap, size, offset
    saved_positions = 48 * 64 - 24 * 32  # stride 4 cells - stride 8 cells
    # the last neck conv and the shared 3x3 conv, then the 1x1 heads, at 4x fewer cells
    assert macs[4] - macs[8] == saved_positions * (2 * n * n * 9 + n * outputs)


@pytest.mark.parametrize('bad', [dict(output_stride=2), dict(output_stride=16),
                                 dict(widths=(24, 24, 48, 64)), dict(widths=(2, 24, 48, 64, 96)),
                                 dict(neck_width=3), dict(num_classes=0),
                                 dict(input_width=250), dict(input_height=100)])
def test_detector_config_rejects(bad: dict) -> None:
    with pytest.raises(ConfigError):
        DetectorConfig(**bad)
