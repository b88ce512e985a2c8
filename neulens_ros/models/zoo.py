"""Loading the shipped (or any trained) detector and gate by name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from neulens_ros.errors import CheckpointError
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.models.registry import load_checkpoint, read_metadata, resolve
from neulens_ros.supernet.detector import DetectorConfig, TileDetector

# Per scene preset: the file names of its detector, gate and DEMUX accuracy table.
CHECKPOINTS = {'easy': ('neulens_detector', 'neulens_cgg', 'accuracy.json'),
               'hard': ('neulens_detector_hard', 'neulens_cgg_hard', 'accuracy_hard.json')}
DETECTOR, GATE, _ = CHECKPOINTS['easy']


def detector_config(meta: dict[str, Any]) -> DetectorConfig:
    """DetectorConfig from a checkpoint's metadata."""
    arch = meta.get('architecture', {})
    try:
        values = {f.name: arch[f.name] for f in fields(DetectorConfig) if f.name in arch}
        values['widths'] = tuple(values.get('widths', DetectorConfig().widths))
        return DetectorConfig(**values)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f'architecture in the metadata is not usable: {exc}') from exc


def checkpoint_preset(meta: dict[str, Any]) -> str:
    """The scene preset a detector checkpoint was trained on ('easy' before presets)."""
    return str(meta.get('architecture', {}).get('preset', 'easy'))


def load_detector(name: str | Path = DETECTOR) -> tuple[TileDetector, dict[str, Any]]:
    """(detector in eval mode, metadata) of a checkpoint name or .pt path."""
    meta = read_metadata(resolve(name))
    model = TileDetector(detector_config(meta))
    _, meta = load_checkpoint(name, 'detector', model)
    return model.eval(), meta


def load_gate(name: str | Path = GATE) -> tuple[CompressionGuidingGate, dict[str, Any]]:
    """(CGG in eval mode, metadata) of a checkpoint name or .pt path."""
    meta = read_metadata(resolve(name))
    arch = meta.get('architecture', {})
    gate = CompressionGuidingGate(num_levels=arch.get('num_levels', 5),
                                  channels=arch.get('channels', 64))
    _, meta = load_checkpoint(name, 'gate', gate)
    return gate.eval(), meta
