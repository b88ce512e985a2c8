"""The compression guiding gate: architecture, tile inputs, outputs, validation."""

from __future__ import annotations

import pytest
import torch

from neulens_ros.errors import ConfigError
from neulens_ros.gate.cgg import (GATE_INPUT, CompressionGuidingGate, gate_inputs,
                                  run_gate)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_each_gate_input_is_its_cell_resized(k: int) -> None:
    torch.manual_seed(k)
    image = torch.rand(3, 28 * k * 2, 28 * k * 3)  # cells of 56 x 84 pixels
    tiles = gate_inputs(image, k)
    mean = torch.tensor((0.485, 0.456, 0.406)).view(3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(3, 1, 1)
    for r in range(k):
        for c in range(k):
            cell = image[:, r * 56:(r + 1) * 56, c * 84:(c + 1) * 84]
            expected = (torch.nn.functional.avg_pool2d(cell[None], (2, 3))[0] - mean) / std
            torch.testing.assert_close(tiles[r * k + c], expected)


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
    lambda: gate_inputs(torch.zeros(3, 10, 10), 0),
    lambda: gate_inputs(torch.zeros(3, 3, 10), 4),
    lambda: gate_inputs(torch.rand(240, 320), 2),
    lambda: CompressionGuidingGate(num_levels=1),
])
def test_gate_validation(call) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError):
        call()
