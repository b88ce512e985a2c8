"""Training the gate on whole frames (gate/training.py train_frame_gate): a gate with context
learns labels that depend on the neighbouring tiles, which the paper's per-tile gate cannot."""

import numpy as np
import pytest
import torch

from neulens_ros.gate.cgg import CompressionGuidingGate, normalise_tiles
from neulens_ros.gate.kind_labels import FrameGateData
from neulens_ros.errors import ConfigError, DataError
from neulens_ros.gate.training import (GateData, GateTraining, frame_gate_accuracy,
                                       gate_accuracy, train_frame_gate, train_gate)
from neulens_ros.levels import LEVEL_SKIP


def neighbour_frames(k: int, count: int, seed: int) -> FrameGateData:
    """Frames of white and black tiles: a white tile is level 0, a black one next to a white
    one (8-neighbourhood) level 3, any other black one skipped."""
    rng = np.random.default_rng(seed)
    white = rng.random((count, k, k)) < 0.2  # [N, k, k]
    padded = np.pad(white, ((0, 0), (1, 1), (1, 1)))
    near = np.zeros_like(white)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            near |= padded[:, 1 + dr:1 + dr + k, 1 + dc:1 + dc + k]
    labels = np.where(white, 0, np.where(near, 3, LEVEL_SKIP)).reshape(count, k * k)
    tiles = np.broadcast_to((white * 255).astype(np.uint8).reshape(count, k * k, 1, 1, 1),
                            (count, k * k, 3, 28, 28))
    return FrameGateData(torch.from_numpy(np.ascontiguousarray(tiles)),
                         torch.from_numpy(labels.astype(np.int64)))


def per_tile_ceiling(data: dict[int, FrameGateData]) -> float:
    """The best accuracy of any gate that sees one tile: white tiles right, black tiles at the
    more common of their two labels."""
    labels = torch.cat([d.labels.ravel() for d in data.values()])
    black = labels[labels != 0]
    best = max(int((black == 3).sum()), int((black == LEVEL_SKIP).sum()))
    return (int((labels == 0).sum()) + best) / len(labels)


@pytest.fixture(scope='module')
def data() -> dict[int, FrameGateData]:
    return {k: neighbour_frames(k, 160, k) for k in (2, 3, 4)}


def test_a_gate_with_context_learns_what_one_tile_cannot_show(data) -> None:  # noqa: ANN001
    cfg = GateTraining(epochs=15, lr=1e-2, seed=0)
    results = {}
    for context in (0, 16):
        gate = CompressionGuidingGate(context=context)
        history = train_frame_gate(gate, data, cfg, progress=False)
        assert len(history) == cfg.epochs and history[-1]['loss'] < history[0]['loss']
        results[context] = frame_gate_accuracy(gate, data)
    ceiling = per_tile_ceiling(data)
    assert ceiling < 0.9
    assert results[0] <= ceiling + 1e-9
    assert results[16] >= 0.97


def test_accuracy_is_the_share_of_right_tiles_over_every_k(data) -> None:  # noqa: ANN001
    gate = CompressionGuidingGate(context=4).eval()
    with torch.inference_mode():
        right = [int((gate(normalise_tiles(frame)).argmax(1) == labels).sum())
                 for d in data.values() for frame, labels in zip(d.tiles, d.labels, strict=True)]
    total = sum(d.labels.numel() for d in data.values())
    assert frame_gate_accuracy(gate, data) == pytest.approx(sum(right) / total)
    everything_skipped = {k: FrameGateData(d.tiles, torch.full_like(d.labels, LEVEL_SKIP))
                          for k, d in data.items()}
    with torch.no_grad():
        gate.fc.weight.zero_()
        gate.fc.bias.copy_(torch.arange(5.0))  # arg-max: skip, everywhere
    assert frame_gate_accuracy(gate, everything_skipped) == 1.0


def empty_frames(k: int) -> FrameGateData:
    return FrameGateData(torch.zeros((0, k * k, 3, 28, 28), dtype=torch.uint8),
                         torch.zeros((0, k * k), dtype=torch.int64))


def test_no_tiles_to_train_or_measure_on_is_a_data_error() -> None:
    empty = {3: empty_frames(3)}
    with pytest.raises(DataError, match='no labelled tiles to train the gate on'):
        train_frame_gate(CompressionGuidingGate(context=4), empty, GateTraining(epochs=1),
                         progress=False)
    with pytest.raises(DataError, match='no labelled tiles to measure the gate on'):
        frame_gate_accuracy(CompressionGuidingGate(context=4), empty)
    no_tiles = GateData(torch.zeros(0, 3, 28, 28), torch.zeros(0, dtype=torch.int64),
                        torch.zeros(0, 5))
    with pytest.raises(DataError, match='no labelled tiles to train the gate on'):
        train_gate(CompressionGuidingGate(), no_tiles, np.ones(5), GateTraining(epochs=1),
                   progress=False)
    with pytest.raises(DataError, match='no labelled tiles to measure the gate on'):
        gate_accuracy(CompressionGuidingGate(), no_tiles)


def test_a_gate_with_context_is_not_trained_tile_by_tile() -> None:
    tiles = GateData(torch.zeros(9, 3, 28, 28), torch.zeros(9, dtype=torch.int64),
                     torch.zeros(9, 5))
    with pytest.raises(ConfigError, match='train it with train_frame_gate'):
        train_gate(CompressionGuidingGate(context=4), tiles, np.ones(5), GateTraining(epochs=1),
                   progress=False)
