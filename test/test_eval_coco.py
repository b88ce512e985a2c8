"""The package's mAP against the standard COCO evaluator (pycocotools), and the COCO adapter."""

import numpy as np
import pytest

from neulens_ros.errors import DataError
from neulens_ros.eval.coco_eval import coco_dicts, coco_map, map50_by_size
from neulens_ros.eval.map import COCO_THRESHOLDS, mean_ap

# Measured: equal to the last bits (1e-16); the acceptance bound is 0.002.
TOLERANCE = 1e-9


def random_case(seed: int, images: int, classes: int, most_dets: int, integer: bool
                ) -> tuple[list, list, list, list, list]:
    """Random ground truth and detections near it (jittered, some of the wrong class, some
    images without boxes); `integer` rounds boxes and scores so IoUs and scores tie."""
    rng = np.random.default_rng(seed)
    gb, gc, pb, ps, pc = [], [], [], [], []
    for _ in range(images):
        g = int(rng.integers(0, 8))
        xy = rng.uniform(0, 200, (g, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (g, 2))], 1)
        cls = rng.integers(0, classes, g)
        m = int(rng.integers(0, most_dets + 1))
        src = rng.integers(0, max(g, 1), m)
        det = (boxes[src] if g else rng.uniform(0, 200, (m, 4))) + rng.normal(0, 6, (m, 4))
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        dcls = np.where(rng.random(m) < 0.8, cls[src] if g else 0, rng.integers(0, classes, m))
        scores = rng.random(m)
        if integer:
            boxes, det, scores = np.round(boxes), np.round(det), np.round(scores, 1)
        gb.append(boxes)
        gc.append(cls)
        pb.append(det)
        ps.append(scores)
        pc.append(dcls)
    return gb, gc, pb, ps, pc


@pytest.mark.parametrize('seed,images,classes,most_dets,integer', [
    (0, 50, 5, 30, False),
    (1, 60, 3, 300, False),  # more than COCO's 100 detections per image and class
    (2, 20, 12, 20, True),  # integer boxes and rounded scores: IoU and score ties
    (3, 200, 5, 10, True),
    (4, 5, 2, 400, True),
])
def test_package_map_equals_cocoeval(seed: int, images: int, classes: int, most_dets: int,
                                     integer: bool) -> None:
    gb, gc, pb, ps, pc = random_case(seed, images, classes, most_dets, integer)
    ours = {'map50': mean_ap(pb, ps, pc, gb, gc, classes),
            'map50_95': mean_ap(pb, ps, pc, gb, gc, classes, COCO_THRESHOLDS)}
    coco = coco_map(gb, gc, pb, ps, pc, range(classes))
    print(f'seed {seed}: ours {ours}, COCOeval {coco}')
    assert 0.0 < coco['map50_95'] < coco['map50'] < 1.0
    assert ours['map50'] == pytest.approx(coco['map50'], abs=TOLERANCE)
    assert ours['map50_95'] == pytest.approx(coco['map50_95'], abs=TOLERANCE)


def _single(det_boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray
            ) -> tuple[float, float]:
    """(ours, COCOeval) mAP@0.5:0.95 of one image and one class."""
    args = ([det_boxes], [scores], [np.zeros(len(det_boxes), int)], [gt_boxes],
            [np.zeros(len(gt_boxes), int)])
    return (mean_ap(*args, 1, COCO_THRESHOLDS),
            coco_map(args[3], args[4], args[0], args[1], args[2], [0])['map50_95'])


def test_rules_that_used_to_differ() -> None:
    """Each rule on its own: at most 100 detections per image and class, and the last of
    equally overlapping ground-truth boxes."""
    gt = np.array([[0, 0, 10, 10]], float)
    misses = np.tile([[50, 50, 60, 60]], (100, 1)).astype(float)
    ours, coco = _single(np.vstack([misses, gt]), np.r_[np.full(100, 0.9), 0.1], gt)
    assert ours == coco == 0.0  # the 101st detection is beyond maxDets
    two = np.array([[0, 0, 10, 8], [0, 2, 10, 10]], float)
    # the first detection overlaps both by 0.8 and takes the second; the other detection
    # then has only the first left (IoU 0.5) instead of the second (IoU 0.875)
    dets = np.array([[0, 0, 10, 10], [0, 3, 10, 10]], float)
    ours, coco = _single(dets, np.array([0.9, 0.8]), two)
    assert ours == pytest.approx(coco, abs=TOLERANCE) == pytest.approx((1 + 6.5 * 51 / 101) / 10)


def test_adapter_on_hand_made_cases() -> None:
    gt = [np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float), np.zeros((0, 4))]
    ids = [np.array([1, 90]), np.array([], int)]  # a data set's own category ids
    perfect = coco_map(gt, ids, gt, [np.array([0.9, 0.8]), np.zeros(0)], ids, [1, 7, 90])
    assert perfect == {'map50': pytest.approx(1.0), 'map50_95': pytest.approx(1.0)}
    nothing = coco_map(gt, ids, [np.zeros((0, 4))] * 2, [np.zeros(0)] * 2,
                       [np.zeros(0, int)] * 2, [1, 90])
    assert nothing == {'map50': 0.0, 'map50_95': 0.0}
    empty = [np.zeros((0, 4))] * 2
    no_truth = coco_map(empty, [np.zeros(0, int)] * 2, gt, [np.array([0.9, 0.8]), np.zeros(0)],
                        ids, [1, 90])
    assert np.isnan(no_truth['map50']) and np.isnan(no_truth['map50_95'])


def test_crowd_boxes_neither_hit_nor_miss() -> None:
    gt = [np.array([[0, 0, 10, 10], [100, 100, 200, 200]], float)]
    cls = [np.array([0, 0])]
    dets = [np.array([[0, 0, 10, 10], [120, 120, 150, 150]], float)]
    scores = [np.array([0.5, 0.9])]  # the detection inside the crowd ranks first
    plain = coco_map(gt, cls, dets, scores, [np.array([0, 0])], [0])
    crowd = coco_map(gt, cls, dets, scores, [np.array([0, 0])], [0],
                     gt_crowd=[np.array([False, True])])
    assert plain['map50'] < 1.0 and crowd['map50'] == pytest.approx(1.0)


def test_map_by_size_scores_each_side_range_on_its_own() -> None:
    # one 8 px box found, one 20 px box missed, one 60 px box found after a false alarm
    gt = [np.array([[0, 0, 8, 8], [50, 50, 70, 70], [100, 100, 160, 160]], float)]
    cls = [np.array([0, 0, 0])]
    dets = [np.array([[0, 0, 8, 8], [100, 100, 160, 160], [200, 0, 260, 60]], float)]
    scores = [np.array([0.9, 0.5, 0.8])]  # the 60 px false alarm ranks above the hit
    by_size = map50_by_size(gt, cls, dets, scores, [np.zeros(3, int)], [0], [16, 40])
    assert by_size[0] == pytest.approx(1.0) and by_size[1] == 0.0
    assert 0.0 < by_size[2] < 1.0  # precision 1/2 at the one recall step
    assert np.isnan(map50_by_size(gt, cls, dets, scores, [np.zeros(3, int)], [0],
                                  [16, 40, 61, 100])[3])  # no box of 61-100 px


@pytest.mark.parametrize('sides', [[], [0, 10], [20, 10], [10, 10]])
def test_map_by_size_needs_increasing_positive_sides(sides: list[float]) -> None:
    gt, cls = [np.array([[0, 0, 10, 10]], float)], [np.array([0])]
    with pytest.raises(DataError, match='increasing'):
        map50_by_size(gt, cls, gt, [np.array([0.9])], cls, [0], sides)


def test_coco_dicts_layout() -> None:
    dataset, results = coco_dicts([np.array([[1, 2, 11, 22]], float)], [np.array([3])],
                                  [np.array([[0, 0, 5, 5]], float)], [np.array([0.7])],
                                  [np.array([3])], [3])
    assert dataset['annotations'] == [{'id': 1, 'image_id': 0, 'category_id': 3,
                                       'bbox': [1.0, 2.0, 10.0, 20.0], 'area': 200.0,
                                       'iscrowd': 0}]
    assert dataset['categories'] == [{'id': 3, 'name': '3'}]
    assert results == [{'image_id': 0, 'category_id': 3, 'bbox': [0.0, 0.0, 5.0, 5.0],
                        'score': 0.7}]


@pytest.mark.parametrize('bad', ['gt-class', 'det-class', 'lengths'])
def test_adapter_rejects(bad: str) -> None:
    gt, cls = [np.array([[0, 0, 10, 10]], float)], [np.array([1])]
    dets, scores, dcls = [np.array([[0, 0, 10, 10]], float)], [np.array([0.9])], [np.array([1])]
    if bad == 'gt-class':
        cls = [np.array([5])]
    elif bad == 'det-class':
        dcls = [np.array([2])]
    else:
        dets, scores, dcls = dets * 2, scores * 2, dcls * 2
    with pytest.raises(DataError, match='not among|lengths'):
        coco_map(gt, cls, dets, scores, dcls, [1])
