"""Tools and nodes follow the detector checkpoint's scene preset: the default checkpoint names
come from one default preset (config files included), and each detector brings its own
accuracy table."""

from __future__ import annotations

import importlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from neulens_ros.control.demux import SloConfig
from neulens_ros.errors import CheckpointError
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.launching import config_dir
from neulens_ros.models.names import ACCURACY_TABLE, CHECKPOINTS, DEFAULT_PRESET, DETECTOR, GATE
from neulens_ros.models.registry import WEIGHTS_DIR, save_checkpoint
from neulens_ros.models.zoo import accuracy_file
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.topology import load_topology

SMALL = DetectorConfig(input_width=64, input_height=64)
# Parameters whose defaults follow the default preset: {node: {parameter: default}}.
PRESET_DEFAULTS = {'gate': {'gate_checkpoint': GATE, 'detector_checkpoint': DETECTOR},
                   'supernet': {'checkpoint': DETECTOR}}


def yaml_parameters(config: str) -> dict:
    return yaml.safe_load((config_dir() / config).read_text())['/**']['ros__parameters']


@pytest.mark.parametrize('node', sorted(PRESET_DEFAULTS))
def test_config_files_match_the_default_preset(node: str) -> None:
    """config/*.yaml spell the names out; they and the nodes' defaults must name the default
    preset's checkpoints, so the preset is switched in one place plus these files."""
    entry = next(e for e in load_topology() if e.name == node)
    defaults = {s.name: s.default for s in importlib.import_module(entry.module).PARAMS}
    in_file = yaml_parameters(entry.config)
    for name, expected in PRESET_DEFAULTS[node].items():
        assert in_file[name] == defaults[name] == expected, (node, name)


def test_default_names_are_the_default_presets() -> None:
    assert (DETECTOR, GATE, ACCURACY_TABLE) == CHECKPOINTS[DEFAULT_PRESET]


def test_accuracy_table_of_a_shipped_detector() -> None:
    assert accuracy_file() == accuracy_file(DETECTOR) == WEIGHTS_DIR / ACCURACY_TABLE
    assert accuracy_file(WEIGHTS_DIR / f'{DETECTOR}.pt') == WEIGHTS_DIR / ACCURACY_TABLE


def test_accuracy_table_next_to_an_exported_detector(tmp_path: Path) -> None:
    detector, _, table = CHECKPOINTS['hard']
    with pytest.raises(CheckpointError, match=f'{table} of detector {detector} not found'):
        accuracy_file(tmp_path / f'{detector}.pt')
    (tmp_path / table).write_text('{}')
    assert accuracy_file(tmp_path / f'{detector}.pt') == tmp_path / table
    with pytest.raises(CheckpointError, match="no accuracy table is known for detector 'mine'"):
        accuracy_file(tmp_path / 'mine.pt')


def test_headset_loads_the_table_of_its_detector(tmp_path: Path) -> None:
    from neulens_ros.pipeline.headset import HeadsetGate
    detector, gate, table = CHECKPOINTS['hard']
    save_checkpoint(tmp_path / f'{detector}.pt', TileDetector(SMALL), 'detector', asdict(SMALL),
                    halo='paper')
    save_checkpoint(tmp_path / f'{gate}.pt', CompressionGuidingGate(), 'gate',
                    {'num_levels': 5, 'channels': 64})
    shutil.copy(WEIGHTS_DIR / ACCURACY_TABLE, tmp_path / table)
    values = json.loads((tmp_path / table).read_text())
    (tmp_path / table).write_text(json.dumps({**values, 'gate_loss': 7.25}))
    step = HeadsetGate.load(SloConfig(), tmp_path / f'{gate}.pt', tmp_path / f'{detector}.pt',
                            gate_backend='torch')
    assert step.demux.accuracy.gate_loss == 7.25
