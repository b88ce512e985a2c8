"""Tools and nodes follow the detector checkpoint's scene preset: the default checkpoint names
come from one default preset (config files included), each detector brings its own accuracy
table, the evaluations and benchmarks draw their scenes and score their classes from the
checkpoint's metadata (here a small detector trained on the hard preset), and the lifting
completes boxes by class name."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from neulens_ros.control.demux import SloConfig
from neulens_ros.data.room import HARD_CLASSES
from neulens_ros.errors import CheckpointError, ConfigError
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.launching import config_dir
from neulens_ros.control.predictor import Predictor
from neulens_ros.models.names import (ACCURACY_TABLE, CHECKPOINTS, DEFAULT_PRESET, DETECTOR, GATE,
                                     PREDICTORS)
from neulens_ros.models.registry import WEIGHTS_DIR, save_checkpoint
from neulens_ros.models.zoo import (accuracy_file, detector_halo, detector_metadata,
                                    predictor_file)
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.topology import load_topology
from neulens_ros.train.pipeline import architecture
from neulens_ros.train.plan import (FULL_HARD, VAL_SEED, detector_held_out_set,
                                    detector_training_set)

SMALL_HARD = DetectorConfig(input_width=64, input_height=64, num_classes=len(HARD_CLASSES))
# Parameters whose defaults follow the default preset: {node: {parameter: default}}.
PRESET_DEFAULTS = {'gate': {'gate_checkpoint': GATE, 'detector_checkpoint': DETECTOR},
                   'supernet': {'checkpoint': DETECTOR}, 'source': {'preset': DEFAULT_PRESET}}


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


def shipped_profile_halo() -> str:
    """The halo the hard preset's shipped latency profile was measured with (that of its
    shipped detector: test_each_shipped_profile_was_measured_on_its_detector)."""
    return Predictor.load(WEIGHTS_DIR / PREDICTORS['hard']).halo


@pytest.fixture
def hard(tmp_path: Path) -> tuple[Path, Path]:
    """(detector, gate) .pt files as `neulens-train --preset hard` exports them (a small,
    untrained detector), with an accuracy table whose gate loss is 7.25 points."""
    detector, gate, table = CHECKPOINTS['hard']
    save_checkpoint(tmp_path / f'{detector}.pt', TileDetector(SMALL_HARD), 'detector',
                    architecture(SMALL_HARD, 'hard'), halo=shipped_profile_halo())
    save_checkpoint(tmp_path / f'{gate}.pt', CompressionGuidingGate(), 'gate',
                    {'num_levels': 5, 'channels': 64})
    values = json.loads((WEIGHTS_DIR / ACCURACY_TABLE).read_text())
    (tmp_path / table).write_text(json.dumps({**values, 'gate_loss': 7.25}))
    return tmp_path / f'{detector}.pt', tmp_path / f'{gate}.pt'


def test_headset_loads_the_table_of_its_detector(hard: tuple[Path, Path]) -> None:
    from neulens_ros.pipeline.headset import HeadsetGate
    detector, gate = hard
    step = HeadsetGate.load(SloConfig(), gate, detector, gate_backend='torch')
    assert step.demux.accuracy.gate_loss == 7.25


def test_held_out_scenes_are_of_the_detectors_preset(hard: tuple[Path, Path]) -> None:
    meta = detector_metadata(hard[0])
    spec = detector_held_out_set(meta, 5)
    assert (spec.preset, spec.input_size, spec.first_seed, spec.count) == (
        'hard', (64, 64), VAL_SEED, 5)
    assert detector_held_out_set(meta, 5, 2 * VAL_SEED).first_seed == 2 * VAL_SEED
    plan, spec = detector_training_set(meta, 0, smoke=False)  # neulens-eval gate's scenes
    assert plan == FULL_HARD and (spec.preset, spec.input_size) == ('hard', (64, 64))


def test_eval_detector_keeps_its_seeds_held_out() -> None:
    from neulens_ros.tools.eval_detector import main
    with pytest.raises(SystemExit):
        main(['--first-seed', '10'])


def one_box_frames(class_id: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array([[4.0, 4.0, 30.0, 30.0]]), np.array([class_id])


def test_slo_bench_scores_the_checkpoints_classes(hard: tuple[Path, Path]) -> None:
    from neulens_ros.pipeline.edge import EdgeResult
    from neulens_ros.tools.bench_slo import Bench, FrameRun
    from neulens_ros.train.data import DetectionSet
    boxes, classes = one_box_frames(len(HARD_CLASSES) - 1)
    data = DetectionSet(np.zeros((1, 64, 64, 3), np.uint8), [boxes], [classes],
                        np.array([False]))
    bench = Bench(data, 'torch', names=('cs',), checkpoints=(str(hard[0]), str(hard[1])))
    found = EdgeResult(boxes, classes, np.array([0.9]), 1.0, 1)
    assert bench.score([FrameRun(1.0, 1.0, True, 0.0, 0.0, (0,), found)]) == 1.0


def test_link_bench_scores_the_checkpoints_classes(tmp_path: Path,
                                                   hard: tuple[Path, Path]) -> None:
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from neulens_ros.bag.writer import BagWriter
    from neulens_ros.bridge.detections import boxes_to_detection2d_array
    from neulens_ros.models.zoo import checkpoint_labels
    from neulens_ros.tools.bench_link import detection_map
    boxes, classes = one_box_frames(len(HARD_CLASSES) - 1)
    with BagWriter(tmp_path / 'bag') as bag:
        for topic in ('/ground_truth/detections_2d', '/neulens/detections_2d'):
            bag.add_topic(topic, 'vision_msgs/msg/Detection2DArray')
            bag.write(topic, 1, serialize_message(boxes_to_detection2d_array(
                Header(), boxes, classes, [0.9])))
    labels = checkpoint_labels(detector_metadata(hard[0]))
    assert detection_map(tmp_path / 'bag', labels) == pytest.approx(1.0)  # COCOeval's


def test_link_bench_runs_the_graph_on_the_checkpoints_preset(hard: tuple[Path, Path]) -> None:
    from neulens_ros.tools.bench_link import checkpoint_overrides
    detector, gate = (str(path) for path in hard)
    assert checkpoint_overrides(detector, gate) == {
        'source': {'preset': 'hard', 'source': 'walk', 'walk_fps': 10.0},
        'gate': {'gate_checkpoint': gate, 'detector_checkpoint': detector},
        'supernet': {'checkpoint': detector}, 'lifting': {'class_names': list(HARD_CLASSES)}}
    assert checkpoint_overrides(detector, gate, 'generated')['source'] == {
        'preset': 'hard', 'source': 'generated'}


def test_link_bench_refuses_walks_of_a_preset_without_them(capsys) -> None:
    from neulens_ros.tools.bench_link import main, source_for
    assert source_for('easy', None) == {'preset': 'easy', 'source': 'generated'}
    with pytest.raises(ConfigError, match="walks move through the rooms of the hard preset, "
                       "not 'easy'"):
        source_for('easy', 'walk')
    with pytest.raises(SystemExit) as exit_info:
        main(['--detector', CHECKPOINTS['easy'][0], '--source', 'walk'])
    assert exit_info.value.code == 2 and 'use --source generated' in capsys.readouterr().err


def test_checkpoint_classes_without_a_list_come_from_the_preset() -> None:
    from neulens_ros.models.zoo import checkpoint_classes
    assert checkpoint_classes({'architecture': {'preset': 'hard'}}) == HARD_CLASSES
    assert checkpoint_classes(detector_metadata(DETECTOR)) == tuple(
        detector_metadata(DETECTOR)['architecture']['classes'])


def test_lifting_node_completes_boxes_by_the_class_names() -> None:
    from neulens_ros.data.scenes import class_names
    from neulens_ros.lifting.lift import footprints_for
    from neulens_ros.nodes.lifting_node import PARAMS, config_from
    values = {spec.name: spec.default for spec in PARAMS}
    assert values['class_names'] == list(class_names(DEFAULT_PRESET))
    assert config_from(values).footprints == footprints_for(class_names(DEFAULT_PRESET))
    hard = config_from({**values, 'class_names': list(HARD_CLASSES)})
    assert hard.footprints == footprints_for(HARD_CLASSES) and hard.footprints[3] == 'round'


def test_lifting_evaluation_completes_boxes_by_the_scenes_classes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import Counter

    from neulens_ros.data.scenes import SceneConfig
    from neulens_ros.eval import lifting
    from neulens_ros.lifting.lift import LiftingResult, footprints_for
    used = []

    def lift(*args: object) -> LiftingResult:
        used.append(args[4].footprints)
        return LiftingResult([], Counter(), {'frame_ms': 1.0, 'per_object_ms': 0.0})
    monkeypatch.setattr(lifting, 'lift_detections', lift)
    lifting.evaluate_lifting([3], SceneConfig(width=160, height=120, preset='hard'),
                             progress=False)
    assert used == [footprints_for(HARD_CLASSES)]


@pytest.mark.parametrize('preset', sorted(CHECKPOINTS))
def test_each_shipped_profile_was_measured_on_its_detector(preset: str) -> None:
    detector = CHECKPOINTS[preset][0]
    path = predictor_file(detector)
    assert path == WEIGHTS_DIR / PREDICTORS[preset]
    profile, meta = Predictor.load(path), detector_metadata(detector)
    assert profile.meta['model_sha256'] == meta['sha256']
    assert profile.halo == detector_halo(meta)  # else the gate node refuses the pair


@pytest.mark.parametrize('preset, profile', [('dataset', PREDICTORS['easy']), ('mars', None)])
def test_a_detector_off_the_presets_gets_the_easy_profile_or_an_error(
        tmp_path: Path, preset: str, profile: str | None) -> None:
    """A data-set detector has the easy plan's architecture; a preset without a profile is
    named, not silently given another's."""
    path = tmp_path / 'detector.pt'
    config = DetectorConfig(input_width=64, input_height=64, num_classes=3)
    save_checkpoint(path, TileDetector(config), 'detector',
                    {**architecture(config, 'easy'), 'preset': preset}, halo='paper')
    if profile is None:
        with pytest.raises(CheckpointError, match="'mars' preset, which has no DEMUX"):
            predictor_file(path)
    else:
        assert predictor_file(path) == WEIGHTS_DIR / profile


def test_a_detector_gets_the_profile_of_its_architecture(hard: tuple[Path, Path]) -> None:
    from neulens_ros.pipeline.headset import HeadsetGate
    assert predictor_file(hard[0]) == WEIGHTS_DIR / PREDICTORS['hard']
    assert predictor_file() == WEIGHTS_DIR / PREDICTORS[DEFAULT_PRESET]
    detector, gate = hard
    step = HeadsetGate.load(SloConfig(), gate, detector, gate_backend='torch')
    assert step.demux.predictor.meta == Predictor.load(WEIGHTS_DIR / PREDICTORS['hard']).meta


def test_a_profile_of_another_halo_is_refused(hard: tuple[Path, Path]) -> None:
    from neulens_ros.pipeline.headset import HeadsetGate
    detector, gate = hard
    other = '8' if shipped_profile_halo() != '8' else 'paper'
    save_checkpoint(detector, TileDetector(SMALL_HARD), 'detector',
                    architecture(SMALL_HARD, 'hard'), halo=other)
    with pytest.raises(ConfigError, match=f"measured with the '{shipped_profile_halo()}' halo"
                                          f".*runs its tiles with '{other}': profile it again"):
        HeadsetGate.load(SloConfig(), gate, detector, gate_backend='torch')
