"""The compression guiding gate: architecture, tile inputs, outputs, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neulens_ros.errors import ConfigError
from neulens_ros.gate.cgg import (GATE_INPUT, CompressionGuidingGate, cell_rects, gate_inputs,
                                  run_gate)


@pytest.mark.parametrize('k', [2, 3, 4])
@pytest.mark.parametrize('size', [(320, 240), (481, 321), (640, 480)])
def test_cells_partition_the_image(k: int, size: tuple[int, int]) -> None:
    width, height = size
    rects = cell_rects(width, height, k)
    assert rects.shape == (k * k, 4)
    cover = np.zeros((height, width), dtype=int)
    for x0, y0, x1, y1 in rects:
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()  # every pixel in exactly one cell
    widths = rects[:, 2] - rects[:, 0]
    assert widths.max() - widths.min() <= 1


@pytest.mark.parametrize('k', [2, 3, 4])
def test_gate_shapes_and_confidences(k: int) -> None:
    torch.manual_seed(0)
    gate = CompressionGuidingGate().eval()
    image = torch.rand(3, 240, 320)
    tiles = gate_inputs(image, k)
    assert tiles.shape == (k * k, 3, GATE_INPUT, GATE_INPUT)
    assert gate(tiles).shape == (k * k, 5)
    out = run_gate(gate, image, k)
    assert out.levels.shape == (k * k,) and set(out.levels) <= set(range(5))
    assert ((out.confidences > 0.2) & (out.confidences <= 1.0)).all()  # max of 5 probs


def test_gate_input_is_the_tile_content() -> None:
    """A tile's gate input depends only on its own cell."""
    image = torch.zeros(3, 240, 320)
    image[:, :120, :160] = 1.0  # top-left cell of k=2 white
    tiles = gate_inputs(image, 2)
    assert torch.allclose(tiles[0], tiles[0][:, :1, :1].expand_as(tiles[0]))
    assert not torch.allclose(tiles[0], tiles[3])
    assert torch.allclose(tiles[1], tiles[3])


def test_gate_parameter_count_matches_the_paper_layout() -> None:
    gate = CompressionGuidingGate()
    assert sum(p.numel() for p in gate.parameters()) == 3 * 64 * 49 + 64 + 64 * 9 * 5 + 5


@pytest.mark.parametrize('call', [
    lambda: cell_rects(10, 10, 0),
    lambda: cell_rects(3, 10, 4),
    lambda: gate_inputs(torch.rand(240, 320), 2),
    lambda: CompressionGuidingGate(num_levels=1),
])
def test_gate_validation(call) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError):
        call()
