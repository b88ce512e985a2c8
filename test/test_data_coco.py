"""COCO data sets: what neulens-gen-data --format coco writes reads back (classes, ids, boxes,
depth, intrinsics), and every bad entry is an error naming the file and the entry, or with
skip_bad a listed skip."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neulens_ros.data.annotated import SKIP_HINT, split
from neulens_ros.data.coco import read_coco
from neulens_ros.data.formats import parse_classes, read_dataset, write_generated
from neulens_ros.data.scenes import SceneConfig, generate_scene, is_labelled
from neulens_ros.errors import ConfigError, DataError

CONFIG = SceneConfig(width=160, height=120, density='dense')
SEEDS = range(3)


@pytest.fixture(scope='module')
def written(tmp_path_factory) -> Path:
    """A COCO set of 3 generated scenes keeping classes 0, 2, 3 as cube, ball (id 9), cone."""
    folder = tmp_path_factory.mktemp('coco')
    selection = parse_classes('0:cube,sphere:ball:9,3:cone', 'easy', 'coco')
    assert write_generated(folder, 'coco', CONFIG, SEEDS, selection) == 3
    return folder


@pytest.fixture
def copy(written, tmp_path) -> Path:
    """A copy of the written set the test may break."""
    return Path(shutil.copytree(written, tmp_path / 'coco'))


def edit(folder: Path, change) -> Path:
    """Apply `change` to the instances JSON of `folder`; returns the JSON's path."""
    path = folder / 'annotations' / 'instances.json'
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def test_written_set_reads_back_with_its_classes_boxes_depth_and_intrinsics(written) -> None:
    data = read_dataset(written)  # the format is recognised from the layout
    assert data.format == 'coco' and len(data) == 3 and data.skipped == ()
    # categories sorted by id are the training indices; ids are the data set's own
    assert data.class_names == ('cube', 'cone', 'ball') and data.class_ids == (0, 3, 9)
    keep = {0: 0, 3: 1, 2: 2}  # generator class -> training index
    for image, seed in zip(data.images, SEEDS, strict=True):
        scene = generate_scene(CONFIG, seed)
        truth = [o for o in scene.objects if o.class_id in keep and is_labelled(o, 160, 120)]
        assert image.size == (160, 120)
        np.testing.assert_allclose(image.boxes, [o.box2d for o in truth])
        assert image.classes.tolist() == [keep[o.class_id] for o in truth]
        assert np.asarray(Image.open(image.path).convert('RGB')).tobytes() == scene.rgb.tobytes()
        depth_mm = np.asarray(Image.open(image.depth_path), np.uint16)
        np.testing.assert_allclose(depth_mm[60, 80] / 1000, scene.depth[60, 80], atol=1e-3)
        assert (image.camera.fx, image.camera.cx, image.camera.cy) == (
            scene.camera.fx, scene.camera.cx, scene.camera.cy)
    assert boxes(data) > 3  # the scenes have boxes to check


def test_the_json_file_itself_and_the_folder_read_the_same(written) -> None:
    a, b = read_coco(written), read_coco(written / 'annotations' / 'instances.json')
    assert [i.path for i in a.images] == [i.path for i in b.images]


@pytest.mark.parametrize('ratio, seed, expected_val', [(0.34, 0, 1), (0.5, 1, 2), (0.9, 0, 2)])
def test_split_by_ratio_is_disjoint_complete_and_seeded(written, ratio, seed, expected_val):
    data = read_coco(written)
    train, val = split(data, ratio, seed)
    assert len(val) == expected_val and len(train) + len(val) == len(data)
    assert not {i.path for i in train.images} & {i.path for i in val.images}
    assert split(data, ratio, seed)[1].images == val.images


@pytest.mark.parametrize('ratio', [0.0, 1.0, -0.2])
def test_split_ratio_out_of_range_is_refused(written, ratio) -> None:
    with pytest.raises(ConfigError, match=r'validation ratio must be in \(0, 1\)'):
        split(read_coco(written), ratio, 0)


def _first_box_annotation(doc) -> dict:
    return doc['annotations'][0]


BAD_ENTRIES = {
    'missing image': (lambda doc: doc['images'][1].update(file_name='gone.png'),
                      r'image id 2 \(gone.png\): image file .*gone.png is not found'),
    'bbox outside': (lambda doc: _first_box_annotation(doc).update(bbox=[150, 10, 30, 20]),
                     r'annotation id 1 \(image id \d+\): bbox lies outside the 160x120 '
                     r'image'),
    'bbox with zero width': (lambda doc: _first_box_annotation(doc).update(bbox=[10, 10, 0, 5]),
                             r'annotation id 1 \(image id \d+\): bbox has non-positive size'),
    'bbox with negative height': (
        lambda doc: _first_box_annotation(doc).update(bbox=[10, 10, 5, -3]),
        r'annotation id 1 \(image id \d+\): bbox has non-positive size'),
    'bbox not 4 numbers': (lambda doc: _first_box_annotation(doc).update(bbox=[1, 2, 3]),
                           r'annotation id 1 \(image id \d+\): bbox is not \[x, y, width, '
                           r'height\]'),
    'unknown category': (lambda doc: _first_box_annotation(doc).update(category_id=2),
                         r'annotation id 1 has unknown category id 2 \(categories: '
                         r'\[0, 3, 9\]\)'),
    'unknown image': (lambda doc: _first_box_annotation(doc).update(image_id=77),
                      r'annotation id 1 refers to unknown image id 77'),
    'size differs from entry': (lambda doc: doc['images'][0].update(width=200),
                                r'image id 1 \(000000.png\): the entry says 200x120, the file '
                                r'is 160x120'),
    'bad camera_K': (lambda doc: doc['images'][0].update(camera_K=[1, 2, 3]),
                     r'image id 1 \(000000.png\): camera_K must be 9 numbers'),
    'camera_K with zero focal length': (
        lambda doc: doc['images'][0].update(camera_K=[0, 0, 80, 0, 0, 60, 0, 0, 1]),
        r'image id 1 \(000000.png\): camera_K .* is not a camera matrix'),
    'missing depth': (lambda doc: doc['images'][0].update(depth_file='none.png'),
                      r'image id 1 \(000000.png\): depth image .*none.png is not found'),
}


@pytest.mark.parametrize('case', sorted(BAD_ENTRIES))
def test_a_bad_entry_is_an_error_naming_the_file_and_entry(copy, case) -> None:
    change, message = BAD_ENTRIES[case]
    path = edit(copy, change)
    with pytest.raises(DataError, match=message) as info:
        read_coco(copy)
    assert str(info.value).startswith(str(path)) and str(info.value).endswith(SKIP_HINT)


@pytest.mark.parametrize('case', sorted(BAD_ENTRIES))
def test_skip_bad_skips_the_entry_and_lists_it(written, copy, case) -> None:
    change, message = BAD_ENTRIES[case]
    edit(copy, change)
    data, good = read_coco(copy, skip_bad=True), read_coco(written)
    assert len(data.skipped) == 1 and re.search(message, data.skipped[0])
    if len(data) == len(good):  # one annotation was skipped
        assert boxes(data) == boxes(good) - 1
    else:  # one image was skipped, with its boxes
        assert len(data) == len(good) - 1


def boxes(data) -> int:
    return sum(len(image.classes) for image in data.images)


def test_depth_of_another_size_is_an_error(copy) -> None:
    Image.fromarray(np.zeros((60, 80), np.uint16)).save(copy / 'images' / '000001_depth.png')
    with pytest.raises(DataError, match=r'image id 2 \(000001.png\): depth image .*'
                                        r'000001_depth.png is 80x60, the colour image 160x120'):
        read_coco(copy)


def test_an_unreadable_image_is_an_error(copy) -> None:
    (copy / 'images' / '000002.png').write_bytes(b'not a png')
    with pytest.raises(DataError, match=r'image id 3 \(000002.png\): image file .* is not a '
                                        r'readable image'):
        read_coco(copy)


@pytest.mark.parametrize('key, index, message', [
    ('images', 1, r'duplicate image id 1 \(images\[1\]\)'),
    ('annotations', 1, r'duplicate annotation id 1 \(annotations\[1\]\)'),
    ('categories', 1, r'duplicate category id 0 \(categories\[1\]\)')])
def test_duplicate_ids_are_errors_even_with_skip_bad(copy, key, index, message) -> None:
    path = edit(copy, lambda doc: doc[key][index].update(id=doc[key][0]['id']))
    with pytest.raises(DataError, match=message) as info:
        read_coco(copy, skip_bad=True)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize('category_id', [-1, 65536])
def test_category_ids_outside_the_wires_range_are_errors(copy, category_id) -> None:
    edit(copy, lambda doc: doc['categories'][0].update(id=category_id))
    with pytest.raises(DataError, match=rf'class ids must be in 0..65535 .*, got '
                                        rf'\[.*{category_id}'):
        read_coco(copy, skip_bad=True)


def test_crowd_annotations_are_skipped_and_listed(written, copy) -> None:
    edit(copy, lambda doc: _first_box_annotation(doc).update(iscrowd=1))
    data = read_coco(copy)
    assert data.skipped == (f'{copy / "annotations" / "instances.json"}: annotation id 1 is a '
                            'crowd region (iscrowd 1)',)
    assert boxes(data) == boxes(read_coco(written)) - 1


def test_an_empty_data_set_is_an_error(copy) -> None:
    edit(copy, lambda doc: doc.update(images=[], annotations=[]))
    with pytest.raises(DataError, match=r'instances.json: the data set has no images$'):
        read_coco(copy)


def test_a_data_set_whose_every_image_was_skipped_is_an_error(copy) -> None:
    edit(copy, lambda doc: [image.update(file_name='gone.png') for image in doc['images']])
    with pytest.raises(DataError, match=r'no images \(3 entries skipped\)'):
        read_coco(copy, skip_bad=True)


@pytest.mark.parametrize('content, message', [
    ('{"images": [', r'cannot be read as JSON'),
    ('{"images": [], "annotations": []}', r"no 'categories' list"),
    ('{"images": [], "annotations": [], "categories": []}', r'needs at least one class'),
    ('{"images": [{"id": "1"}], "annotations": [], "categories": [{"id": 1, "name": "a"}]}',
     r'images\[0\] lacks or mistypes id, file_name, width, height'),
])
def test_a_malformed_annotation_file_is_an_error(tmp_path, content, message) -> None:
    path = tmp_path / 'instances.json'
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_coco(path)


def test_a_folder_without_annotations_is_not_a_data_set(tmp_path) -> None:
    with pytest.raises(DataError, match='neither a COCO data set'):
        read_dataset(tmp_path)
    (tmp_path / 'annotations').mkdir()
    with pytest.raises(DataError, match=r'exactly one annotations/instances\*.json \(found '
                                        r'none\)'):
        read_dataset(tmp_path)


@pytest.mark.parametrize('text, message', [
    ('7:thing', r"'7' is not a class of the 'easy' preset"),
    ('lamp:thing', r"'lamp' is not a class"),
    ('0', r'expected SRC:NAME or SRC:NAME:ID'),
    ('0:a:x', r'an explicit id must be an integer'),
    ('0:a,1:a', r'repeats a name'),
    ('0:a:3,1:b:3', r'repeats a id'),
    ('0:a,1:b:0', r'repeats a id'),
    ('0:a,0:b', r'repeats a generator class'),
    ('0: ', r'class names must not be empty'),
])
def test_bad_class_selections_are_refused(text, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_classes(text, 'easy', 'coco')


def test_yolo_selections_take_no_explicit_ids() -> None:
    with pytest.raises(ConfigError, match='only COCO has free ids'):
        parse_classes('0:a:5', 'easy', 'yolo')
    assert parse_classes('3:cone,0:cube', 'easy', 'yolo').ids == (0, 1)
    assert parse_classes(None, 'easy', 'coco').ids == (0, 1, 2, 3, 4)
