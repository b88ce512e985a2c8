"""Checkpoints: load by name or path, and a clear CheckpointError for every kind of damage."""

import json

import pytest
import torch

from neulens_ros.errors import CheckpointError
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.models.registry import load_checkpoint, save_checkpoint
from neulens_ros.models.zoo import detector_halo, load_detector, load_gate
from neulens_ros.supernet.detector import DetectorConfig, TileDetector

SMALL = DetectorConfig(input_width=64, input_height=64)


def saved(tmp_path):
    from dataclasses import asdict
    torch.manual_seed(0)
    model = TileDetector(SMALL)
    path = tmp_path / 'det.pt'
    save_checkpoint(path, model, 'detector', asdict(SMALL), halo='paper')
    return model, path


def test_round_trip_by_path(tmp_path) -> None:
    model, path = saved(tmp_path)
    loaded, meta = load_detector(path)
    assert meta['halo'] == 'paper' and loaded.config == SMALL
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    gate_path = tmp_path / 'g.pt'
    save_checkpoint(gate_path, CompressionGuidingGate(), 'gate', {'num_levels': 5,
                                                                  'channels': 64})
    gate, _ = load_gate(gate_path)
    assert gate(torch.zeros(2, 3, 28, 28)).shape == (2, 5)


def test_missing_file_and_metadata(tmp_path) -> None:
    with pytest.raises(CheckpointError, match='not found'):
        load_detector(tmp_path / 'nothing.pt')
    with pytest.raises(CheckpointError, match='not found; shipped models'):
        load_detector('no_such_model')
    _, path = saved(tmp_path)
    path.with_suffix('.json').unlink()
    with pytest.raises(CheckpointError, match='metadata det.json is missing'):
        load_detector(path)


def test_corrupt_file_is_named(tmp_path) -> None:
    _, path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r'det.pt: corrupt \(sha256'):
        load_detector(path)


def test_wrong_kind_and_architecture(tmp_path) -> None:
    _, path = saved(tmp_path)
    with pytest.raises(CheckpointError, match="is a 'detector' checkpoint, expected 'gate'"):
        load_checkpoint(path, 'gate')
    meta = json.loads(path.with_suffix('.json').read_text())
    meta['architecture']['widths'] = [16, 16, 32, 64, 128]
    path.with_suffix('.json').write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match='does not match the architecture.*shape'):
        load_detector(path)


@pytest.mark.parametrize('meta, halo', [({}, 'paper'), ({'halo': 'paper'}, 'paper'),
                                        ({'halo': 2}, '2'), ({'halo': 'exact'}, 'exact')])
def test_the_halo_a_detector_runs_with(meta: dict, halo: str) -> None:
    assert detector_halo(meta) == halo


@pytest.mark.parametrize('halo', ['wide', -2, None])
def test_a_bad_halo_in_the_metadata_is_a_checkpoint_error(halo) -> None:  # noqa: ANN001
    with pytest.raises(CheckpointError, match='halo in the metadata is not usable'):
        detector_halo({'halo': halo})
