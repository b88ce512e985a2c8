"""YOLO data sets: what neulens-gen-data --format yolo writes reads back (names, boxes within
the label files' rounding), and every bad line or file is an error naming it, or with skip_bad
a listed skip."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from neulens_ros.data.annotated import SKIP_HINT
from neulens_ros.data.formats import dataset_format, parse_classes, read_dataset, write_generated
from neulens_ros.data.scenes import SceneConfig, generate_scene, is_labelled
from neulens_ros.data.yolo import read_yolo
from neulens_ros.errors import DataError

CONFIG = SceneConfig(width=160, height=120, density='dense')
SEEDS = range(3)


@pytest.fixture(scope='module')
def written(tmp_path_factory) -> Path:
    """A YOLO set of 3 generated scenes keeping cone and box (in that order) as 'c' and 'b'."""
    folder = tmp_path_factory.mktemp('yolo')
    write_generated(folder, 'yolo', CONFIG, SEEDS, parse_classes('cone:c,box:b', 'easy', 'yolo'))
    return folder


@pytest.fixture
def copy(written, tmp_path) -> Path:
    return Path(shutil.copytree(written, tmp_path / 'yolo'))


def boxes(data) -> int:
    return sum(len(image.classes) for image in data.images)


def test_written_set_reads_back(written) -> None:
    assert dataset_format(written) == 'yolo'
    data = read_dataset(written)
    assert data.format == 'yolo' and len(data) == 3 and data.skipped == ()
    assert data.class_names == ('c', 'b') and data.class_ids == (0, 1)
    keep = {3: 0, 0: 1}
    for image, seed in zip(data.images, SEEDS, strict=True):
        scene = generate_scene(CONFIG, seed)
        truth = [o for o in scene.objects if o.class_id in keep and is_labelled(o, 160, 120)]
        np.testing.assert_allclose(image.boxes, [o.box2d for o in truth], atol=1e-3)
        assert image.classes.tolist() == [keep[o.class_id] for o in truth]
        assert image.depth_path is None and image.camera is None
    assert boxes(data) > 3
    assert yaml.safe_load((written / 'data.yaml').read_text())['names'] == ['c', 'b']


def test_names_come_from_a_mapping_or_classes_txt(copy) -> None:
    (copy / 'data.yaml').write_text('names: {0: first, 1: second}\n')
    assert read_yolo(copy).class_names == ('first', 'second')
    (copy / 'data.yaml').unlink()
    (copy / 'classes.txt').write_text('alpha\nbeta\n')
    assert read_yolo(copy).class_names == ('alpha', 'beta')


def test_an_image_without_a_label_file_has_no_objects(copy) -> None:
    label = sorted((copy / 'labels').glob('*.txt'))[0]
    label.unlink()
    data = read_yolo(copy)
    assert len(data) == 3 and len(data.images[0].classes) == 0 and data.skipped == ()


def _first_label(folder: Path) -> Path:
    """The first label file with a box."""
    return next(p for p in sorted((folder / 'labels').glob('*.txt')) if p.read_text())


BAD_LINES = {
    'four fields': ('0 0.5 0.5 0.1', r'has 4 fields, expected 5'),
    'not numbers': ('0 a 0.5 0.1 0.1', r'is not an integer class and four numbers'),
    'float class': ('0.5 0.5 0.5 0.1 0.1', r'is not an integer class and four numbers'),
    'unknown class': ('2 0.5 0.5 0.1 0.1', r'has class 2, not one of the 2 classes 0..1'),
    'negative class': ('-1 0.5 0.5 0.1 0.1', r'has class -1'),
    'outside': ('0 0.95 0.5 0.2 0.1', r'box lies outside the 160x120 image'),
    'zero width': ('1 0.5 0.5 0 0.1', r'box has non-positive size'),
    'negative height': ('1 0.5 0.5 0.1 -0.1', r'box has non-positive size'),
}


@pytest.mark.parametrize('case', sorted(BAD_LINES))
def test_a_malformed_line_is_an_error_naming_file_and_line(copy, case) -> None:
    line, message = BAD_LINES[case]
    label = _first_label(copy)
    label.write_text(label.read_text() + line + '\n')
    number = len(label.read_text().splitlines())
    with pytest.raises(DataError, match=re.escape(f'{label}:{number}: {line!r} ') + message) \
            as info:
        read_yolo(copy)
    assert str(info.value).endswith(SKIP_HINT)


@pytest.mark.parametrize('case', sorted(BAD_LINES))
def test_skip_bad_skips_the_line_and_lists_it(written, copy, case) -> None:
    line, message = BAD_LINES[case]
    label = _first_label(copy)
    label.write_text(label.read_text() + line + '\n')
    data = read_yolo(copy, skip_bad=True)
    assert len(data.skipped) == 1 and re.search(message, data.skipped[0])
    assert boxes(data) == boxes(read_yolo(written))  # the good lines are all kept


def test_a_label_file_without_an_image_is_a_bad_entry(written, copy) -> None:
    orphan = copy / 'labels' / 'lost.txt'
    orphan.write_text('0 0.5 0.5 0.1 0.1\n')
    with pytest.raises(DataError, match=re.escape(f'{orphan}: label file without an image')):
        read_yolo(copy)
    assert read_yolo(copy, skip_bad=True).skipped == (
        f'{orphan}: label file without an image in {copy / "images"}',)


def test_a_missing_or_unreadable_image_is_a_bad_entry(copy) -> None:
    bad = copy / 'images' / '000001.png'
    bad.write_bytes(b'')
    with pytest.raises(DataError, match=re.escape(f'{bad}: image is not a readable image')):
        read_yolo(copy)
    data = read_yolo(copy, skip_bad=True)
    assert len(data) == 2 and len(data.skipped) == 1


def test_two_images_sharing_a_label_file_are_an_error(copy) -> None:
    Image.new('RGB', (16, 16)).save(copy / 'images' / '000000.jpg')
    with pytest.raises(DataError, match=r'images 000000.jpg and 000000.png share the label '
                                        r'file .*000000.txt: duplicate image name'):
        read_yolo(copy, skip_bad=True)


def test_an_empty_data_set_is_an_error(copy) -> None:
    for image in (copy / 'images').glob('*.png'):
        image.unlink()
    shutil.rmtree(copy / 'labels')
    with pytest.raises(DataError, match=re.escape(f'{copy}: the data set has no images')):
        read_yolo(copy)


@pytest.mark.parametrize('content, message', [
    ('names: []\n', r'`names` must be a non-empty list'),
    ('names: {0: a, 2: b}\n', r'`names` must be a non-empty list .* got \{0: .a., 2: .b.\}'),
    ('- just a list\n', r'data.yaml: not a YAML mapping'),
])
def test_bad_class_names_are_errors(copy, content, message) -> None:
    (copy / 'data.yaml').write_text(content)
    with pytest.raises(DataError, match=message):
        read_yolo(copy)


def test_a_folder_without_class_names_or_images_is_an_error(copy, tmp_path) -> None:
    (copy / 'data.yaml').unlink()
    with pytest.raises(DataError, match=r'names its classes in data.yaml .* or classes.txt'):
        read_yolo(copy)
    (tmp_path / 'bare').mkdir()
    with pytest.raises(DataError, match=r'has an images/ folder'):
        read_yolo(tmp_path / 'bare')
