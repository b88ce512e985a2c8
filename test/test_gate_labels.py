"""The gate's labelling rule: strict matching and the joint pass, on the shipped easy detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neulens_ros.data.scenes import SceneConfig, generate_scene
from neulens_ros.gate.labels import MatchRule, label_frame, mismatches
from neulens_ros.models.names import CHECKPOINTS
from neulens_ros.models.zoo import load_detector
from neulens_ros.supernet.centernet import Detections, decode
from neulens_ros.supernet.executor import MicroFlowExecutor, normalise
from neulens_ros.data.resize import box_resize


def dets(boxes, scores, classes) -> Detections:  # noqa: ANN001
    return Detections(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float),
                      np.asarray(classes, np.int64))


def test_match_needs_class_box_and_score() -> None:
    ref = dets([[0, 0, 10, 10]], [0.8], [1])
    rule = MatchRule()
    assert mismatches(ref, dets([[0, 0, 10, 10]], [0.75], [1]), rule) == 0
    assert mismatches(ref, dets([[0, 0, 10, 10]], [0.6], [1]), rule) == 2  # score fell 0.2
    assert mismatches(ref, dets([[0, 0, 10, 10]], [0.8], [2]), rule) == 2  # other class
    assert mismatches(ref, dets([[3, 0, 13, 10]], [0.8], [1]), rule) == 2  # IoU 0.54 < 0.7
    assert mismatches(ref, dets([[3, 0, 13, 10]], [0.8], [1]),
                      MatchRule(iou_threshold=0.5)) == 0
    assert mismatches(ref, dets([], [], []), rule) == 1
    assert mismatches(ref, dets([[0, 0, 10, 10]], [0.05], [1]), rule) == 1  # below threshold


@pytest.fixture(scope='module')
def frame() -> tuple[MicroFlowExecutor, torch.Tensor, int]:
    model, _ = load_detector(CHECKPOINTS['easy'][0])  # an easy scene whose labels it knows
    cfg = model.config
    rgb = box_resize(generate_scene(SceneConfig(density='dense'), 5).rgb,
                 (cfg.input_width, cfg.input_height))
    x = normalise(torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float())
    return MicroFlowExecutor(model, 'layer2'), x, cfg.output_stride


@pytest.mark.parametrize('k', [2, 3])
def test_joint_labels_applied_together_match_the_reference(frame, k: int) -> None:  # noqa: ANN001
    executor, x, stride = frame
    single = label_frame(executor, x, k, 'paper', stride, MatchRule(joint=False))
    joint = label_frame(executor, x, k, 'paper', stride)
    assert np.all(joint.labels <= single.labels)
    assert np.array_equal(joint.errors, single.errors)
    runs = np.stack([np.zeros(k * k, np.int64), single.labels, joint.labels])
    out = decode(executor(x.expand(3, -1, -1, -1), runs, k, 'paper'), stride,
                 score_threshold=MatchRule().score_threshold)
    assert mismatches(out[0], out[2], MatchRule()) == 0
    if k == 3:  # this scene is one where the single-tile labels together lose detections
        assert mismatches(out[0], out[1], MatchRule()) > 0
