"""neulens-train --data / neulens-eval detector --data: data sets on disk become the detector's
input as camera frames do, classes map to a checkpoint's, the options are checked, and (slow)
a COCO set with renamed classes trains, exports its classes and is evaluated."""

import argparse
import re
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neulens_ros.data.annotated import AnnotatedImage, DetectionDataset
from neulens_ros.data.formats import parse_classes, read_dataset, write_generated
from neulens_ros.data.resize import box_resize
from neulens_ros.data.scenes import SceneConfig, class_names
from neulens_ros.errors import DataError
from neulens_ros.eval.oracle import ORACLE_FAMILY, OracleRule
from neulens_ros.models.names import CHECKPOINTS, DATASET_PRESET, DEFAULT_PRESET
from neulens_ros.models.registry import save_checkpoint
from neulens_ros.models.zoo import checkpoint_labels
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.tools.data_args import SKIPPED_FILE, read_data
from neulens_ros.tools.eval_detector import main as eval_detector
from neulens_ros.tools.gen_dataset import main as gen_data
from neulens_ros.tools.train import main as train
from neulens_ros.train import data as train_data
from neulens_ros.train import plan
from neulens_ros.train.data import (DataSource, SetSpec, dataset_set,
                                    render_set, to_checkpoint_classes)
from neulens_ros.train.pipeline import architecture
from neulens_ros.train.plan import (GATE_CONTEXT, GATE_LABELS, SMOKE, fit_to_images,
                                    with_gate_labels)

SMALL = SceneConfig(width=160, height=120, density='dense')


@pytest.fixture(scope='module')
def coco(tmp_path_factory) -> Path:
    """4 generated scenes as COCO, classes box / sphere / cone renamed (ids 0, 2, 3)."""
    folder = tmp_path_factory.mktemp('coco')
    write_generated(folder, 'coco', SMALL, range(4),
                    parse_classes('0:cube,2:ball,3:cone', 'easy', 'coco'))
    return folder


def one_image(tmp_path: Path, size: tuple[int, int], box: list[float]) -> DetectionDataset:
    rgb = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    image = AnnotatedImage(tmp_path / 'a.png', size, np.array([box]), np.array([0]))
    return DetectionDataset(tmp_path / 'a.json', 'coco', ('thing',), (5,), (image,))


@pytest.mark.parametrize('size', [(320, 100), (256, 192), (50, 400)])
def test_images_of_any_size_are_resized_as_camera_frames_with_their_boxes(tmp_path, size):
    data = dataset_set(one_image(tmp_path, size, [10.0, 20.0, 30.0, 60.0]), (256, 192),
                       progress=False)
    rgb = np.asarray(Image.open(tmp_path / 'a.png'))
    assert data.images.shape == (1, 192, 256, 3)
    assert np.array_equal(data.images[0], box_resize(rgb, (256, 192)))
    sx, sy = 256 / size[0], 192 / size[1]
    np.testing.assert_allclose(data.boxes[0], [[10 * sx, 20 * sy, 30 * sx, 60 * sy]])
    assert data.classes[0].tolist() == [0] and not data.dense[0]


@pytest.mark.parametrize('walk_frames', [0, 3])
def test_worker_processes_render_the_set_one_process_renders(monkeypatch, walk_frames):
    """Chunks of seeds rendered in two spawned processes, joined in seed order: the same
    images, boxes and classes as rendering in this process."""
    monkeypatch.setattr(train_data, 'PARALLEL_FRAMES', 1)
    monkeypatch.setattr(train_data, 'CHUNK_SEEDS', 2)
    spec = SetSpec(11, 5, (160, 120), (128, 96), preset='hard', walk_frames=walk_frames)
    alone, pooled = (render_set(spec, progress=False, workers=w) for w in (1, 2))
    assert len(pooled) == 5 * max(1, walk_frames)
    assert np.array_equal(alone.images, pooled.images)
    assert np.array_equal(alone.dense, pooled.dense)
    for name in ('boxes', 'classes'):
        for a, b in zip(getattr(alone, name), getattr(pooled, name), strict=True):
            assert np.array_equal(a, b)
    assert len(set(pooled.images[:, 0, 0, 0].tolist())) > 1  # frames differ, not one repeated


def test_render_workers_must_not_be_negative():
    with pytest.raises(DataError, match='render workers must be >= 0, got -1'):
        render_set(SetSpec(0, 1, (160, 120), (128, 96)), progress=False, workers=-1)


@pytest.mark.parametrize('fmt, atol', [('coco', 0.0), ('yolo', 1e-3)])
def test_a_written_set_reads_as_the_generated_set_it_was_written_from(tmp_path, fmt, atol):
    """Every class under its own id: the images, boxes and classes the detector gets from
    the files are those of the generated scenes (YOLO's label files round to 6 decimals)."""
    spec = SetSpec(5, 3, (320, 240), (256, 192), density='dense')
    write_generated(tmp_path, fmt, SceneConfig(width=320, height=240, density='dense'),
                    range(5, 8), parse_classes(None, 'easy', fmt))
    generated = render_set(spec, progress=False)
    read = dataset_set(read_dataset(tmp_path), (256, 192), progress=False)
    assert np.array_equal(read.images, generated.images)
    for name in ('boxes', 'classes'):
        for a, b in zip(getattr(read, name), getattr(generated, name), strict=True):
            np.testing.assert_allclose(a, b, atol=atol)
    assert sum(len(c) for c in read.classes) > 10


def test_classes_map_to_a_checkpoints_training_indices_by_id(coco) -> None:
    data = read_dataset(coco)
    assert data.class_ids == (0, 2, 3)
    mapped = to_checkpoint_classes(data, ('ball', 'x', 'cone', 'cube'), (2, 7, 3, 0))
    assert mapped.class_names == ('ball', 'x', 'cone', 'cube')
    lookup = np.array([3, 0, 2])  # cube -> 3, ball -> 0, cone -> 2
    for before, after in zip(data.images, mapped.images, strict=True):
        assert after.classes.tolist() == lookup[before.classes].tolist()


@pytest.mark.parametrize('names, ids, wrong', [
    (('cube', 'ball'), (0, 2), "'cone' (id 3)"),  # a class the detector does not have
    (('cube', 'sphere', 'cone'), (0, 2, 3), "'ball' (id 2)"),  # same id, another name
])
def test_classes_the_checkpoint_lacks_are_an_error(coco, names, ids, wrong) -> None:
    with pytest.raises(DataError, match=re.escape(f'classes {wrong} are not classes of the '
                                                  'detector')):
        to_checkpoint_classes(read_dataset(coco), names, ids)


def test_checkpoint_metadata_records_the_data_sets_class_names_and_ids() -> None:
    config = DetectorConfig(num_classes=3)
    source = DataSource(('cube', 'ball', 'cone'), (0, 2, 3), {})
    meta = {'architecture': architecture(config, DATASET_PRESET, source)}
    assert meta['architecture']['classes'] == ['cube', 'ball', 'cone']
    assert meta['architecture']['class_ids'] == [0, 2, 3]
    labels = checkpoint_labels(meta)  # what the nodes publish
    assert (labels.names, labels.ids) == (('cube', 'ball', 'cone'), (0, 2, 3))
    generated = architecture(DetectorConfig(), 'easy')
    assert generated['class_ids'] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize('images, label, calibration', [(4, 2, 2), (9, 4, 5), (40, 6, 6)])
def test_the_plan_fits_a_small_training_set(images, label, calibration) -> None:
    plan = fit_to_images(SMOKE, images)
    assert (plan.label_scenes, plan.calibration_scenes) == (label, calibration)


@pytest.mark.parametrize('images, held, calibration', [(4, 1, 1), (9, 1, 1), (20, 4, 4),
                                                      (40, 6, 6)])
def test_a_kinds_gate_keeps_images_to_fit_on_a_small_training_set(images, held, calibration
                                                                    ) -> None:
    # the kinds gate fits on the images after the held-out and the calibration ones
    plan = fit_to_images(with_gate_labels(SMOKE, 'kinds'), images)
    assert (plan.label_scenes, plan.calibration_scenes) == (held, calibration)
    assert images - held - calibration >= 2


def test_too_few_training_images_are_refused(coco, tmp_path, capsys) -> None:
    # 4 images, a quarter validates: 3 train
    assert train(['--data', str(coco), '--val-ratio', '0.25', '--smoke', '--quiet',
                  '--work', str(tmp_path)]) == 2
    assert 'training needs at least 4 images' in capsys.readouterr().err


def test_data_and_preset_together_are_refused(coco, tmp_path, capsys) -> None:
    assert train(['--data', str(coco), '--preset', 'hard', '--work', str(tmp_path)]) == 2
    assert 'drop --preset' in capsys.readouterr().err


def test_a_validation_set_with_other_classes_is_refused(coco, tmp_path, capsys) -> None:
    other = tmp_path / 'other'
    write_generated(other, 'coco', SMALL, range(2), parse_classes('0:cube', 'easy', 'coco'))
    assert train(['--data', str(coco), '--val-data', str(other), '--smoke',
                  '--work', str(tmp_path / 'w')]) == 2
    assert 'a validation data set needs the same classes and ids' in capsys.readouterr().err


def test_a_missing_data_set_is_refused(tmp_path, capsys) -> None:
    assert train(['--data', str(tmp_path / 'nothing'), '--work', str(tmp_path)]) == 2
    assert 'neither a COCO data set' in capsys.readouterr().err


def test_skipped_entries_are_printed_and_written(coco, tmp_path, capsys) -> None:
    broken = tmp_path / 'broken.json'
    doc = json.loads((coco / 'annotations' / 'instances.json').read_text())
    doc['images'][0]['file_name'] = 'gone.png'
    broken.write_text(json.dumps(doc))
    (tmp_path / 'images').symlink_to(coco / 'images')
    args = argparse.Namespace(data_format=None, skip_bad=True)
    data = read_data(broken, args, 'prog', tmp_path / 'out')
    assert len(data) == 3 and len(data.skipped) == 1
    out = capsys.readouterr().out
    assert '3 images' in out and '1 entries skipped' in out and 'prog: skipped ' in out
    assert (tmp_path / 'out' / SKIPPED_FILE).read_text() == data.skipped[0] + '\n'


def test_eval_refuses_a_data_set_of_other_classes(coco, tmp_path, capsys) -> None:
    # the easy detector's classes are box, cylinder, sphere, cone, pyramid (ids 0..4)
    detector, gate, _ = CHECKPOINTS['easy']
    assert eval_detector(['--data', str(coco), '--detector', detector, '--gate', gate,
                          '--out', str(tmp_path)]) == 2
    assert "classes 'cube' (id 0), 'ball' (id 2) are not classes of the " \
           'detector' in capsys.readouterr().err


def test_eval_of_a_data_set_detector_needs_data(tmp_path, capsys) -> None:
    config = DetectorConfig(num_classes=3)
    path = tmp_path / 'det.pt'
    save_checkpoint(path, TileDetector(config), 'detector', architecture(
        config, DATASET_PRESET, DataSource(('a', 'b', 'c'), (1, 2, 3), {})),
        dataset={'data': 'mine'})
    assert eval_detector(['--detector', str(path), '--out', str(tmp_path / 'o')]) == 2
    assert 'was trained on a data set on disk (mine), not on generated scenes: evaluate it ' \
        'on its data set with neulens-eval detector --data' in capsys.readouterr().err


def test_gen_data_classes_need_a_detection_format(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        gen_data(['--out', str(tmp_path), '--classes', '0:a'])
    assert '--classes needs --format coco or yolo' in capsys.readouterr().err
    beyond = len(class_names(DEFAULT_PRESET))  # one past the default preset's last class
    with pytest.raises(SystemExit):
        gen_data(['--out', str(tmp_path), '--format', 'coco', '--classes', f'{beyond}:a'])
    assert f"'{beyond}' is not a class of the '{DEFAULT_PRESET}' preset" in \
        capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize('labels', GATE_LABELS)
def test_a_generated_coco_set_with_renamed_classes_trains_and_evaluates(tmp_path, labels: str
                                                                         ) -> None:
    data, work = tmp_path / 'coco', tmp_path / 'work'
    assert gen_data(['--out', str(data), '--num', '14', '--size', '160x120', '--format', 'coco',
                     '--preset', 'easy', '--classes', '0:cube,2:ball,3:cone']) == 0
    assert train(['--data', str(data), '--smoke', '--quiet', '--work', str(work),
                  '--gate-labels', labels]) == 0
    weights = work / 'weights'  # a --data run does not export into the package
    detector, gate, _ = CHECKPOINTS['easy']  # but under the names of the easy plan it trains
    gate_meta = json.loads((weights / f'{gate}.json').read_text())
    assert gate_meta['labels'] == labels  # whatever the gate learns, the usual names
    assert gate_meta['architecture']['context'] == GATE_CONTEXT[labels]
    assert gate_meta['metrics']['tiles_fit'] > 0
    # a gate on tile kinds ships the rule its calibration chose beside the caution
    sweep = gate_meta['calibration']['sweep']
    training = json.loads((weights / f'{detector}.json').read_text())['dataset']['train_images']
    plan = fit_to_images(with_gate_labels(SMOKE, labels), training)
    assert gate_meta['calibration']['images'] == {  # no images to spare: the training ones
        'training images': {'first': plan.label_scenes, 'count': plan.calibration_scenes}}
    if labels == 'kinds':
        assert gate_meta['kind_rule'] in [s['kind_rule'] for s in sweep]
        assert len({tuple(s['kind_rule']) for s in sweep}) == len(ORACLE_FAMILY)
    else:
        assert gate_meta['kind_rule'] is None and all(s['kind_rule'] is None for s in sweep)
    meta = json.loads((weights / f'{detector}.json').read_text())
    assert meta['architecture']['classes'] == ['cube', 'ball', 'cone']
    assert meta['architecture']['class_ids'] == [0, 2, 3]
    assert meta['architecture']['num_classes'] == 3
    assert meta['architecture']['preset'] == DATASET_PRESET
    labels = checkpoint_labels(meta)  # the classes the nodes publish
    assert labels.names == ('cube', 'ball', 'cone') and labels.ids == (0, 2, 3)
    assert meta['dataset'] == {'format': 'coco', 'data': str(data), 'val_data': None,
                               'val_ratio': 0.2, 'split_seed': 0, 'train_images': 11,
                               'val_images': 3, 'skipped': 0}
    out = tmp_path / 'eval'
    assert eval_detector(['--data', str(data), '--val-ratio', '0.2', '--out', str(out),
                          '--detector', str(weights / f'{detector}.pt'),
                          '--gate', str(weights / f'{gate}.pt')]) == 0
    results = json.loads((out / 'eval.json').read_text())
    assert results['held_out']['val_images'] == 3 and results['headline']['frames'] == 3
    assert {'untiled', 'cgg', 'uniform_3'} <= set(results['variants'])
    assert results['headline']['gate_kind_rule'] == (
        None if gate_meta['kind_rule'] is None else
        OracleRule(*gate_meta['kind_rule']).name.removeprefix('oracle_'))
    # the validation part neulens-train drew is the one evaluated
    train_eval = json.loads((work / 'eval.json').read_text())
    assert train_eval['variants']['untiled'] == results['variants']['untiled']


DATASET_META = {'architecture': {'preset': 'dataset', 'num_classes': 3,
                                 'classes': ['cube', 'ball', 'cone'], 'class_ids': [0, 2, 3]},
                'dataset': {'data': 'my_objects'}}


@pytest.mark.parametrize('call', [
    lambda: plan.scene_preset(DATASET_META),
    lambda: plan.detector_held_out_set(DATASET_META, 4),
    lambda: plan.detector_training_set(DATASET_META, 0, smoke=True)])
def test_generated_scene_tools_refuse_a_dataset_detector(call) -> None:
    """A detector trained on a data set on disk has no generated scenes: the tools that draw
    them (benchmarks, gate/lifting evaluation) stop with what to use instead."""
    with pytest.raises(DataError, match=r'my_objects.*neulens-eval detector --data'):
        call()


def test_scene_preset_of_a_preset_detector() -> None:
    assert plan.scene_preset({'architecture': {'preset': 'hard'}}) == 'hard'
    assert plan.scene_preset({}) == 'easy'  # checkpoints from before presets
