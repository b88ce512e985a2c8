"""Gate labels from tile kinds (gate/kind_labels.py): the oracle's level of each tile's kind,
the mirror images, and the validated frame data."""

import numpy as np
import pytest
import torch

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.gate.cgg import gate_tiles
from neulens_ros.gate.kind_labels import (KIND_RULE, FrameGateData, chosen_kinds,
                                          kind_gate_data, mirror)
from neulens_ros.gate.tile_kinds import CENTRE, EMPTY, TOUCHED, owned_blocks, tile_kinds
from neulens_ros.levels import LEVEL_SKIP
from neulens_ros.supernet.tiling import tile_grid

CHAIN = [(3, 2, 1), (3, 2, 1), (3, 2, 1)]  # a front of total stride 8, as at P = layer2
KS = (2, 3, 4)


def grids(ks=KS):  # noqa: ANN001, ANN201
    return {k: tile_grid(CHAIN, 256, 192, k, 'paper') for k in ks}


def frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (192, 256, 3), dtype=np.uint8)
    x0, y0 = rng.uniform(0, 200, 3), rng.uniform(0, 150, 3)
    boxes = np.stack([x0, y0, x0 + rng.uniform(4, 50, 3), y0 + rng.uniform(4, 40, 3)], 1)
    return image, boxes


def test_the_rule_is_the_oracle_that_keeps_accuracy() -> None:
    assert KIND_RULE.levels(np.array([CENTRE, TOUCHED, EMPTY])).tolist() == [0, 3, LEVEL_SKIP]
    assert KIND_RULE.name == 'oracle_0_3_skip'


def test_mirror_flips_image_and_boxes_and_undoes_itself() -> None:
    image, boxes = frame(0)
    flipped, fboxes = mirror(image, boxes)
    assert np.array_equal(flipped[:, 0], image[:, -1])
    assert np.allclose(fboxes[:, [0, 2]], 256 - boxes[:, [2, 0]])
    assert np.allclose(fboxes[:, [1, 3]], boxes[:, [1, 3]])
    again, aboxes = mirror(flipped, fboxes)
    assert np.array_equal(again, image) and np.allclose(aboxes, boxes)


@pytest.mark.parametrize('k', KS)
def test_labels_are_the_rule_of_each_tile_kind(k: int) -> None:
    frames = [frame(s) for s in range(4)]
    data = kind_gate_data(np.stack([f[0] for f in frames]), [f[1] for f in frames],
                          grids((k,)))[k]
    owned = owned_blocks(grids((k,))[k])
    assert len(data) == 4 and data.tiles.shape == (4, k * k, 3, 28, 28)
    for i, (image, boxes) in enumerate(frames):
        assert data.labels[i].tolist() == KIND_RULE.levels(tile_kinds(boxes, owned)).tolist()
        assert torch.equal(data.tiles[i], torch.from_numpy(gate_tiles(image, k)))
    assert {0, LEVEL_SKIP} <= set(data.labels.ravel().tolist())  # centres and empty tiles


@pytest.mark.parametrize('k', KS)
def test_mirrored_frames_follow_the_originals(k: int) -> None:
    frames = [frame(s) for s in range(3)]
    images, boxes = np.stack([f[0] for f in frames]), [f[1] for f in frames]
    data = kind_gate_data(images, boxes, grids((k,)), mirrored=True)[k]
    assert len(data) == 6
    owned = owned_blocks(grids((k,))[k])
    for i in range(3):
        image, fboxes = mirror(images[i], boxes[i])
        assert torch.equal(data.tiles[3 + i], torch.from_numpy(gate_tiles(image, k)))
        assert data.labels[3 + i].tolist() == \
            KIND_RULE.levels(tile_kinds(fboxes, owned)).tolist()


def test_frames_without_boxes_are_all_skipped() -> None:
    image = np.zeros((192, 256, 3), np.uint8)
    data = kind_gate_data(image[None], [np.zeros((0, 4))], grids())
    assert all((d.labels == LEVEL_SKIP).all() for d in data.values())


@pytest.mark.parametrize('tiles, labels', [
    (torch.zeros(2, 4, 3, 28, 28, dtype=torch.uint8), torch.zeros(2, 9, dtype=torch.int64)),
    (torch.zeros(2, 4, 3, 28, 28), torch.zeros(2, 4, dtype=torch.int64)),
])
def test_frame_data_is_validated(tiles: torch.Tensor, labels: torch.Tensor) -> None:
    with pytest.raises(DataError, match='frame gate data'):
        FrameGateData(tiles, labels)


@pytest.mark.parametrize('level, kind', [(0, CENTRE), (1, TOUCHED), (2, TOUCHED), (3, TOUCHED),
                                         (LEVEL_SKIP, EMPTY)])
def test_the_kinds_a_gate_chose_are_read_from_its_levels(level: int, kind: int) -> None:
    assert chosen_kinds(np.array([level])).tolist() == [kind]


def test_chosen_kinds_invert_the_kind_rule() -> None:
    kinds = np.random.default_rng(0).integers(0, 3, (5, 9))
    assert np.array_equal(chosen_kinds(KIND_RULE.levels(kinds)), kinds)


def test_a_rule_levels_the_kinds_a_gate_chose() -> None:
    from neulens_ros.eval.oracle import OracleRule
    from neulens_ros.gate.kind_labels import rule_levels
    levels = np.array([[0, 3, 4, 1, 2]])  # centre, touched, empty; 1 and 2 count as touched
    assert rule_levels(levels, None).tolist() == levels.tolist()
    assert rule_levels(levels, OracleRule(1, 3, 4)).tolist() == [[1, 3, 4, 3, 3]]
    assert rule_levels(levels, OracleRule(0, 0, 3)).tolist() == [[0, 0, 3, 0, 0]]


def test_a_gates_operating_point_comes_from_its_metadata() -> None:
    from neulens_ros.eval.oracle import OracleRule
    from neulens_ros.gate.kind_labels import gate_operating_point
    assert gate_operating_point({}) == (0.0, None)
    assert gate_operating_point({'caution': 1.5, 'labels': 'kinds', 'kind_rule': [1, 3, 4]}) \
        == (1.5, OracleRule(1, 3, 4))
    assert gate_operating_point({'labels': 'kinds', 'kind_rule': None}) == (0.0, None)


@pytest.mark.parametrize('meta, match', [
    ({'labels': 'paper', 'kind_rule': [0, 3, 4]}, 'needs a gate on tile kinds'),
    ({'kind_rule': [0, 3, 4]}, 'needs a gate on tile kinds'),
    ({'labels': 'kinds', 'kind_rule': [0, 3]}, 'three integer levels'),
    ({'labels': 'kinds', 'kind_rule': 'x'}, 'three integer levels'),
    ({'labels': 'kinds', 'kind_rule': [0.5, 3, 4]}, 'three integer levels'),
    ({'labels': 'kinds', 'kind_rule': [True, 3, 4]}, 'three integer levels'),
    ({'labels': 'kinds', 'kind_rule': [3, 0, 4]}, 'must not narrow'),
    ({'labels': 'kinds', 'kind_rule': [0, 3, 9]}, 'must be in'),
])
def test_invalid_kind_rules_are_refused(meta: dict, match: str) -> None:
    from neulens_ros.gate.kind_labels import gate_operating_point
    with pytest.raises(ConfigError, match=match):
        gate_operating_point(meta)
