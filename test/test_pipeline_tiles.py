"""FrameDecision validation and tile cropping on the headset."""

import numpy as np
import pytest

from neulens_ros.errors import DataError, GeometryError
from neulens_ros.pipeline.decision import LEVEL_SKIP, FrameDecision
from neulens_ros.pipeline.tiles import crop_tile, crop_tiles


def grid_rects(width: int, height: int, k: int, halo: int = 0) -> np.ndarray:
    xs = np.linspace(0, width, k + 1).astype(int)
    ys = np.linspace(0, height, k + 1).astype(int)
    return np.array([(xs[c] - halo, ys[r] - halo, xs[c + 1] + halo, ys[r + 1] + halo)
                     for r in range(k) for c in range(k)], dtype=np.int32)


def decision(k: int = 3, levels: tuple[int, ...] | None = None, **kw) -> FrameDecision:
    args = dict(stamp_ns=1, frame_id='cam', image_size=(640, 480), input_size=(320, 240),
                k=k, p_index=0, p_layers=5, halo='paper',
                levels=levels if levels is not None else (0,) * (k * k),
                tile_rects=grid_rects(320, 240, k))
    args.update(kw)
    return FrameDecision(**args)


@pytest.mark.parametrize('k', [2, 3, 4])
@pytest.mark.parametrize('halo', [0, 5])
def test_crops_cover_the_frame_with_zero_padding(k: int, halo: int) -> None:
    image = np.random.default_rng(k).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    rects = grid_rects(320, 240, k, halo)
    tiles = crop_tiles(image, rects)
    assert sorted(tiles) == list(range(k * k))
    for i, tile in tiles.items():
        x0, y0, x1, y1 = rects[i]
        assert tile.shape == (y1 - y0, x1 - x0, 3)
        # every in-image pixel is the image's, everything outside is zero
        for y in (0, tile.shape[0] - 1):
            for x in (0, tile.shape[1] - 1):
                gx, gy = x0 + x, y0 + y
                inside = 0 <= gx < 320 and 0 <= gy < 240
                expected = image[gy, gx] if inside else np.zeros(3, np.uint8)
                np.testing.assert_array_equal(tile[y, x], expected)


def test_inner_crop_is_a_view_and_subset_indices() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    tile = crop_tile(image, (2, 2, 5, 6))
    assert np.shares_memory(tile, image) and tile.shape == (4, 3, 3)
    assert list(crop_tiles(image, grid_rects(10, 10, 2), (1, 3))) == [1, 3]


@pytest.mark.parametrize('rect', [(5, 5, 5, 8), (0, 3, 4, 1), (20, 0, 30, 5), (-8, -8, 0, 0)])
def test_bad_rectangles(rect: tuple[int, int, int, int]) -> None:
    with pytest.raises(GeometryError):
        crop_tile(np.zeros((10, 10, 3), np.uint8), rect)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_decision_sent_tiles_and_histogram(k: int) -> None:
    levels = tuple((i % 5) for i in range(k * k))
    d = decision(k, levels)
    assert d.sent_tiles == tuple(i for i, lv in enumerate(levels) if lv != LEVEL_SKIP)
    assert d.level_histogram().sum() == k * k
    assert d.level_histogram()[LEVEL_SKIP] == levels.count(LEVEL_SKIP)
    assert d.tile_size(0) == tuple(int(v) for v in (d.tile_rects[0, 2] - d.tile_rects[0, 0],
                                                    d.tile_rects[0, 3] - d.tile_rects[0, 1]))


@pytest.mark.parametrize('kw,match', [
    (dict(levels=(0,) * 8), '8 levels'),
    (dict(levels=(0,) * 8 + (5,)), 'levels must be in'),
    (dict(tile_rects=np.zeros((9, 3))), 'tile_rects must be'),
    (dict(tile_rects=np.zeros((9, 4))), 'x1 > x0'),
    (dict(confidences=(0.5,) * 4), '4 confidences'),
    (dict(policy='greedy'), 'policy'),
    (dict(image_size=(0, 480)), 'must be positive'),
])
def test_invalid_decisions(kw: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        decision(3, **kw)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_decision_message_round_trip(k: int) -> None:
    from std_msgs.msg import Header

    from neulens_ros.bridge.tile_decision import decision_to_msg, msg_to_decision
    levels = tuple((3 * i) % 5 for i in range(k * k))
    d = decision(k, levels, stamp_ns=1_700_000_000_123_456_789, gate_levels=levels,
                 confidences=tuple(np.linspace(0.1, 0.9, k * k).round(3)), policy='min',
                 latency_slo_ms=80.0, predicted_latency_ms=61.5, fits_slo=True, rtt_ms=4.0)
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    msg = decision_to_msg(d, header)
    assert list(msg.levels) == list(levels) and len(msg.tile_rects) == 4 * k * k
    back = msg_to_decision(msg)
    np.testing.assert_array_equal(back.tile_rects, d.tile_rects)
    np.testing.assert_allclose(back.confidences, d.confidences, rtol=1e-6)
    assert back.levels == d.levels and back.stamp_ns == d.stamp_ns
    assert (back.policy, back.k, back.halo, back.latency_slo_ms) == ('min', k, 'paper', 80.0)


def test_inconsistent_decision_message_is_rejected() -> None:
    from neulens_msgs.msg import TileDecision

    from neulens_ros.bridge.tile_decision import msg_to_decision
    msg = TileDecision(k=2, image_width=4, image_height=4, input_width=4, input_height=4,
                       policy='cs', levels=[0, 0, 0], tile_rects=[0, 0, 2, 2] * 4)
    with pytest.raises(DataError, match='3 levels'):
        msg_to_decision(msg)
    msg.levels, msg.tile_rects = [0] * 4, [0, 0, 2]
    with pytest.raises(DataError, match='multiple of 4'):
        msg_to_decision(msg)
