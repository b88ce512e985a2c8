"""Backbone pre-training on object crops: windows, validation, weights that change."""

import numpy as np
import pytest
import torch

from neulens_ros.errors import ConfigError
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.train.data import DetectionSet
from neulens_ros.train.pretrain import Pretraining, object_crops, pretrain_backbone


def tiny_set() -> DetectionSet:
    images = np.zeros((2, 64, 96, 3), np.uint8)
    images[0, 10:20, 30:40] = 200  # object 0 around (35, 15)
    images[1, 50:64, 80:96] = 100  # object 1 at the bottom-right corner
    boxes = [np.array([[30.0, 10.0, 40.0, 20.0]]), np.array([[80.0, 50.0, 96.0, 64.0]])]
    return DetectionSet(images, boxes, [np.array([3]), np.array([1])], np.zeros(2, bool))


def test_crops_are_centred_on_the_objects_and_padded_at_the_border() -> None:
    crops, classes = object_crops(tiny_set(), 32)
    assert crops.shape == (2, 32, 32, 3) and classes.tolist() == [3, 1]
    assert (crops[0, 11:21, 11:21] == 200).all() and crops[0, :5].max() == 0
    assert (crops[1, 9:23, 8:24] == 100).all()
    assert crops[1, 23:].max() == 0 and crops[1, :, 24:].max() == 0  # beyond the frame


def test_pretraining_changes_the_stages_and_keeps_the_heads() -> None:
    model = TileDetector(DetectorConfig(num_classes=4, widths=(8, 8, 8, 8, 8), neck_width=8))
    stem, head = model.stem.conv.weight.clone(), model.heatmap.weight.clone()
    history = pretrain_backbone(model, tiny_set(), Pretraining(steps=3, batch_size=2, window=32),
                                progress=False)
    assert [r['step'] for r in history] == [1, 2, 3]
    assert not torch.equal(stem, model.stem.conv.weight)
    assert torch.equal(head, model.heatmap.weight)
    assert pretrain_backbone(model, tiny_set(), Pretraining(steps=0), progress=False) == []


@pytest.mark.parametrize('kwargs', [dict(steps=-1), dict(batch_size=0), dict(window=16),
                                    dict(lr=0.0)])
def test_invalid_pretraining(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Pretraining(**kwargs)


def test_no_objects_is_an_error() -> None:
    empty = DetectionSet(np.zeros((1, 32, 32, 3), np.uint8), [np.zeros((0, 4))],
                         [np.zeros(0, np.int64)], np.zeros(1, bool))
    with pytest.raises(ConfigError, match='no objects'):
        object_crops(empty, 32)
