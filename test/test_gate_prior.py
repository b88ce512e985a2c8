"""The temporal prior (gate/prior.py): tile kinds of the previous frame's boxes grown by the
motion margin, the score threshold, the fusion that only ever lowers the gate's levels, and
its validated config."""

import math

import numpy as np
import pytest

from neulens_ros.data.scene_types import SceneConfig
from neulens_ros.data.walk import WalkConfig
from neulens_ros.errors import ConfigError
from neulens_ros.gate.prior import (DEFAULT_MARGIN_PX, DEFAULT_MARGIN_PX_PER_S, PriorConfig,
                                    Sighting, apply_prior, prior_kinds, turn_shift_px)
from neulens_ros.gate.tile_kinds import CENTRE, EMPTY, TOUCHED, owned_blocks, tile_kinds
from neulens_ros.levels import LEVEL_SKIP
from neulens_ros.supernet.tiling import tile_grid

CHAIN = [(3, 2, 1), (3, 2, 1), (3, 2, 1)]  # a front of total stride 8, as at P = layer2
KS = (2, 3, 4)


def owned(k: int) -> np.ndarray:
    """[k*k, 4] owned blocks of a 256 x 192 input (inner edges x 128 / 88 / 64 at k 2 / 3 / 4,
    test_eval_oracle.py)."""
    return owned_blocks(tile_grid(CHAIN, 256, 192, k, 'paper'))


def first_edge(k: int) -> int:
    """x of the first inner tile edge."""
    return int(owned(k)[0, 2])


def near_edge(k: int, gap: float = 10.0) -> np.ndarray:
    """[1, 4] a 4 x 4 box in tile (0, 0) whose centre lies `gap` pixels left of the edge."""
    cx = first_edge(k) - gap
    return np.array([[cx - 2, 4, cx + 2, 8]], float)


@pytest.mark.parametrize('k', KS)
def test_without_margin_the_kinds_are_the_oracles(k: int) -> None:
    boxes = np.array([[2, 2, 150, 30], [60, 100, 70, 180], [200, 150, 256, 192]], float)
    kinds = prior_kinds(boxes, np.ones(3), owned(k), PriorConfig(margin_px=0))
    np.testing.assert_array_equal(kinds, tile_kinds(boxes, owned(k)))


@pytest.mark.parametrize('k', KS)
@pytest.mark.parametrize('margin, kind', [(5.0, EMPTY), (9.0, TOUCHED), (12.0, CENTRE)])
def test_the_margin_grows_boxes_and_centres_into_the_next_tile(k: int, margin: float,
                                                               kind: int) -> None:
    """Centre 10 px left of the edge, box 2 px wide each side: a margin beyond 8 px reaches the
    next tile with the box, beyond 10 px with the centre."""
    kinds = prior_kinds(near_edge(k), np.ones(1), owned(k), PriorConfig(margin_px=margin))
    expected = np.full(k * k, EMPTY)
    expected[0], expected[1] = CENTRE, kind
    np.testing.assert_array_equal(kinds, expected)


@pytest.mark.parametrize('k', KS)
def test_the_margin_reaches_down_and_left_too(k: int) -> None:
    x1, y1 = owned(k)[0, 2:]
    box = np.array([[x1 + 3, y1 + 3, x1 + 7, y1 + 7]], float)  # in tile (1, 1), near (0, 0)
    kinds = prior_kinds(box, np.ones(1), owned(k), PriorConfig(margin_px=8)).reshape(k, k)
    assert kinds[1, 1] == CENTRE
    assert kinds[0, 0] == kinds[0, 1] == kinds[1, 0] == CENTRE  # the centre square reaches
    assert (kinds[2:] == EMPTY).all() and (kinds[:, 2:] == EMPTY).all()


@pytest.mark.parametrize('k', KS)
def test_detections_below_the_score_threshold_are_ignored(k: int) -> None:
    config = PriorConfig(margin_px=0, score_threshold=0.4)
    boxes = np.concatenate([near_edge(k), [[first_edge(k) + 2, 4, first_edge(k) + 6, 8]]])
    kinds = prior_kinds(boxes, np.array([0.39, 0.4]), owned(k), config)
    assert kinds[0] == EMPTY and kinds[1] == CENTRE  # at the threshold: used
    assert (prior_kinds(boxes, np.array([0.1, 0.2]), owned(k), config) == EMPTY).all()


@pytest.mark.parametrize('k', KS)
def test_fusion_caps_the_gate_per_kind(k: int) -> None:
    config = PriorConfig(margin_px=9, centre_level=0, touched_level=2)  # (0, 1): touched
    boxes, scores = near_edge(k), np.ones(1)
    skip = apply_prior(np.full(k * k, LEVEL_SKIP), boxes, scores, owned(k), config)
    assert skip.tolist() == [0, 2] + [LEVEL_SKIP] * (k * k - 2)
    narrow = apply_prior(np.full(k * k, 1), boxes, scores, owned(k), config)
    assert narrow.tolist() == [0, 1] + [1] * (k * k - 2)  # touched tile: not raised to 2


@pytest.mark.parametrize('k', KS)
def test_the_prior_never_raises_a_level(k: int) -> None:
    rng = np.random.default_rng(k)
    config = PriorConfig(margin_px=20, score_threshold=0.3, centre_level=1, touched_level=3)
    for _ in range(50):
        levels = rng.integers(0, LEVEL_SKIP + 1, k * k)
        xy = rng.uniform(0, [256, 192], (6, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(0, 80, (6, 2))], axis=1)
        scores = rng.uniform(0, 1, 6)
        fused = apply_prior(levels, boxes, scores, owned(k), config)
        kinds = prior_kinds(boxes, scores, owned(k), config)
        assert (fused <= levels).all()
        np.testing.assert_array_equal(fused, np.minimum(levels, config.caps()[kinds]))
        np.testing.assert_array_equal(fused[kinds == EMPTY], levels[kinds == EMPTY])


def test_no_detections_leave_the_gate_alone() -> None:
    levels = np.arange(9) % (LEVEL_SKIP + 1)
    fused = apply_prior(levels, np.zeros((0, 4)), np.zeros(0), owned(3), PriorConfig())
    np.testing.assert_array_equal(fused, levels)


def test_the_default_margin_is_one_capped_turn_at_the_image_centre() -> None:
    walk, scene = WalkConfig(), SceneConfig()
    focal = scene.focal_px * 256 / scene.width  # the 256-pixel input's focal length, 210 px
    assert turn_shift_px(focal, walk.max_turn_deg_s, walk.fps) == pytest.approx(
        210 * math.tan(math.radians(9)))
    assert DEFAULT_MARGIN_PX == PriorConfig().margin_px == 33.0


@pytest.mark.parametrize('fields, message', [
    ({'margin_px': -1.0}, 'margin_px -1.0 must be finite and >= 0'),
    ({'margin_px': math.nan}, 'margin_px nan'), ({'margin_px': math.inf}, 'margin_px inf'),
    ({'score_threshold': -0.1}, 'score_threshold -0.1 is outside 0..1'),
    ({'score_threshold': 1.5}, 'score_threshold 1.5'),
    ({'centre_level': -1}, r'must be in 0..4, got \(-1, 2\)'),
    ({'touched_level': 5}, r'must be in 0..4, got \(0, 5\)'),
    ({'centre_level': 3, 'touched_level': 2}, 'centre_level 3 must not be above touched_level'),
])
def test_bad_prior_configs_are_config_errors(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PriorConfig(**fields)


def test_two_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError, match='margin_px .*; score_threshold'):
        PriorConfig(margin_px=-2, score_threshold=2)


@pytest.mark.parametrize('age_ms, used', [(0.0, False), (-40.0, False), (40.0, True),
                                          (500.0, True), (501.0, False)])
def test_a_sighting_makes_a_prior_for_later_frames_within_its_age(age_ms: float,
                                                                  used: bool) -> None:
    seen = Sighting(10**9, np.array([[64.0, 48.0, 128.0, 96.0]]), np.array([0.8]))
    previous = seen.previous(10**9 + int(age_ms * 1e6), (640, 480), (256, 192), 0.5,
                             DEFAULT_MARGIN_PX_PER_S, 0.3)
    assert (previous is not None) == used
    if used:  # camera pixels -> network input pixels, margin growing with the age
        np.testing.assert_allclose(previous.boxes, [[25.6, 19.2, 51.2, 38.4]])
        assert previous.config.margin_px == pytest.approx(DEFAULT_MARGIN_PX * age_ms / 100)
        assert previous.config.score_threshold == 0.3 and previous.scores.tolist() == [0.8]


def test_prior_kinds_agree_with_the_tile_kinds_of_both_box_sets() -> None:
    """One pass over the grown centres and boxes (box_hits) gives what two tile_kinds
    calls give."""
    rng = np.random.default_rng(0)
    for k in KS:
        corners = rng.uniform(0, 180, (6, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(1, 60, (6, 2))], axis=1)
        scores = rng.uniform(0, 1, 6)
        config = PriorConfig(margin_px=12.0)
        keep = boxes[scores >= config.score_threshold]
        grown = keep + [-12, -12, 12, 12]
        centres = np.tile((keep[:, :2] + keep[:, 2:]) / 2, 2) + [-12, -12, 12, 12]
        centre = tile_kinds(centres, owned(k)) != EMPTY
        touched = tile_kinds(grown, owned(k)) != EMPTY
        expected = np.where(centre, CENTRE, np.where(touched, TOUCHED, EMPTY))
        np.testing.assert_array_equal(prior_kinds(boxes, scores, owned(k), config), expected)
