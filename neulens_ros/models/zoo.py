"""Loading the shipped (or any trained) detector and gate by name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from neulens_ros.data.scenes import class_names
from neulens_ros.errors import CheckpointError, ConfigError
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.models.labels import ClassLabels, metadata_labels
from neulens_ros.models.names import CHECKPOINTS, DETECTOR, GATE, PREDICTORS, naming_preset
from neulens_ros.models.registry import WEIGHTS_DIR, load_checkpoint, read_metadata, resolve
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.supernet.tiling import check_halo


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


def detector_halo(meta: dict[str, Any]) -> str:
    """The halo a detector checkpoint runs its tiles with (supernet/tiling.py; 'paper' for
    checkpoints that record none); CheckpointError for one that is not a halo mode."""
    try:
        return check_halo(meta.get('halo', 'paper'))
    except ConfigError as exc:
        raise CheckpointError(f'halo in the metadata is not usable: {exc}') from exc


def checkpoint_labels(meta: dict[str, Any]) -> ClassLabels:
    """The classes of a detector checkpoint (models/labels.py): its metadata's class names
    and data-set ids (ids 0..n-1 when it has none; the names of its preset when it lists no
    names)."""
    return metadata_labels(meta, class_names(checkpoint_preset(meta)))


def checkpoint_classes(meta: dict[str, Any]) -> tuple[str, ...]:
    """The class names of a detector checkpoint, in training order."""
    return checkpoint_labels(meta).names


def accuracy_file(detector: str | Path = DETECTOR) -> Path:
    """The DEMUX accuracy table that belongs to a detector checkpoint: for a shipped name, the
    shipped table of its preset (CHECKPOINTS); for a .pt path, the file next to it named as
    `neulens-train` exports them (neulens_detector_hard.pt -> accuracy_hard.json)."""
    path = Path(detector) if Path(detector).suffix == '.pt' else WEIGHTS_DIR / f'{detector}.pt'
    tables = {name: table for name, _, table in CHECKPOINTS.values()}
    if path.stem not in tables:
        raise CheckpointError(f'no accuracy table is known for detector {path.stem!r} (named '
                              f'tables belong to {", ".join(sorted(tables))}): give the '
                              'table from neulens-train explicitly')
    table = path.parent / tables[path.stem]
    if not table.is_file():
        raise CheckpointError(f'accuracy table {table} of detector {path.stem} not found '
                              '(neulens-train exports it with the detector)')
    return table


def predictor_file(detector: str | Path = DETECTOR) -> Path:
    """The shipped DEMUX latency profile (control/predictor.py) of a detector checkpoint's
    architecture: the profile of the preset it was trained on (PREDICTORS; the easy one for a
    data set on disk). Profiles are per machine: `neulens-profile --detector NAME` measures
    this one's."""
    preset = checkpoint_preset(detector_metadata(detector))
    profile = PREDICTORS.get(naming_preset(preset))
    if profile is None:
        raise CheckpointError(f'{detector} was trained on the {preset!r} preset, which has no '
                              f'DEMUX latency profile (profiles: {", ".join(PREDICTORS)})')
    return WEIGHTS_DIR / profile


def detector_metadata(name: str | Path = DETECTOR) -> dict[str, Any]:
    """The metadata of a detector checkpoint name or .pt path (preset, classes, input size),
    without loading its weights."""
    return read_metadata(resolve(name))


def load_detector(name: str | Path = DETECTOR) -> tuple[TileDetector, dict[str, Any]]:
    """(detector in eval mode, metadata) of a checkpoint name or .pt path."""
    model = TileDetector(detector_config(detector_metadata(name)))
    _, meta = load_checkpoint(name, 'detector', model)
    return model.eval(), meta


def load_gate(name: str | Path = GATE) -> tuple[CompressionGuidingGate, dict[str, Any]]:
    """(CGG in eval mode, metadata) of a checkpoint name or .pt path."""
    meta = read_metadata(resolve(name))
    arch = meta.get('architecture', {})
    gate = CompressionGuidingGate(num_levels=arch.get('num_levels', 5),
                                  channels=arch.get('channels', 64),
                                  context=arch.get('context', 0))
    _, meta = load_checkpoint(name, 'gate', gate)
    return gate.eval(), meta
