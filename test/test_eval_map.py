"""COCO-style mAP on hand-made cases."""

import numpy as np
import pytest

from neulens_ros.eval.map import COCO_THRESHOLDS, average_precision, box_iou, mean_ap

GT = [np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float), np.array([[5, 5, 25, 25]], float)]
GT_CLS = [np.array([0, 1]), np.array([0])]


def test_iou() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10],
                                                        [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]])


def test_perfect_detections_score_one() -> None:
    scores = [np.array([0.9, 0.8]), np.array([0.7])]
    assert mean_ap(GT, scores, GT_CLS, GT, GT_CLS, 2) == pytest.approx(1.0)
    assert mean_ap(GT, scores, GT_CLS, GT, GT_CLS, 2, COCO_THRESHOLDS) == pytest.approx(1.0)


def test_duplicates_are_false_positives_and_order_matters() -> None:
    preds = [np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float), np.zeros((0, 4))]
    cls = [np.array([0, 0]), np.array([], int)]
    gt = [np.array([[0, 0, 10, 10]], float), np.zeros((0, 4))]
    gt_cls = [np.array([0]), np.array([], int)]
    # duplicate ranked below the true positive: recall 1 reached at precision 1
    assert mean_ap(preds, [np.array([0.9, 0.5]), np.array([])], cls, gt, gt_cls, 1) == \
        pytest.approx(1.0)
    # a false positive ranked first halves the precision at full recall
    preds2 = [np.array([[50, 50, 60, 60], [0, 0, 10, 10]], float), np.zeros((0, 4))]
    assert mean_ap(preds2, [np.array([0.9, 0.5]), np.array([])], cls, gt, gt_cls, 1) == \
        pytest.approx(0.5)


def test_missing_detections_and_wrong_class() -> None:
    preds = [np.array([[0, 0, 10, 10]], float), np.zeros((0, 4))]
    ap = mean_ap(preds, [np.array([0.9]), np.array([])], [np.array([0]), np.array([], int)],
                 GT, GT_CLS, 2)
    # class 0: 1 of 2 found at precision 1 -> 51/101; class 1: nothing -> 0
    assert ap == pytest.approx((51 / 101 + 0.0) / 2)
    wrong = mean_ap(GT, [np.array([0.9, 0.8]), np.array([0.7])],
                    [np.array([1, 0]), np.array([1])], GT, GT_CLS, 2)
    assert wrong == pytest.approx(0.0)


def test_loose_box_counts_at_05_not_at_095() -> None:
    preds = [np.array([[0, 0, 10, 12]], float)]  # IoU 10/12 = 0.83
    gt, cls = [np.array([[0, 0, 10, 10]], float)], [np.array([0])]
    assert mean_ap(preds, [np.array([1.0])], cls, gt, cls, 1, (0.5,)) == 1.0
    assert mean_ap(preds, [np.array([1.0])], cls, gt, cls, 1, (0.95,)) == 0.0
    assert mean_ap(preds, [np.array([1.0])], cls, gt, cls, 1, COCO_THRESHOLDS) == \
        pytest.approx(0.7)


def test_no_ground_truth_is_nan() -> None:
    assert np.isnan(average_precision(np.array([0.5]), np.array([False]), 0))
