"""Headset and edge steps without ROS: frame -> decision + tiles -> message -> detections."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from neulens_ros.bridge.image import numpy_to_compressed
from neulens_ros.bridge.tile_batch import (JPEG_BLOCK, pack_tile_batch, paste_mosaic,
                                          unpack_tile_batch)
from neulens_ros.control.accuracy import AccuracyTable
from neulens_ros.control.demux import SloConfig
from neulens_ros.control.predictor import Predictor, ProfileRecord
from neulens_ros.data.scenes import SceneConfig, generate_scene
from neulens_ros.errors import ConfigError, DataError, EncodingError, GeometryError
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.pipeline.edge import EdgeConfig, EdgeDetector
from neulens_ros.pipeline.headset import GateFrame, HeadsetGate
from neulens_ros.pipeline.tiles import overlap
from neulens_ros.supernet.centernet import decode
from neulens_ros.supernet.detector import P_OPTIONS, DetectorConfig, TileDetector
from neulens_ros.supernet.executor import crop_frames, normalise

CFG = DetectorConfig(input_width=128, input_height=96)


def synthetic_predictor() -> Predictor:
    rng = np.random.default_rng(0)
    recs = []
    for p in P_OPTIONS:
        recs.append(ProfileRecord(p, 0, (0,) * 5, 5.0, 1.0))
        for k in (2, 3, 4):
            for i in range(12):
                h = np.bincount(rng.integers(0, 5, k * k) if i >= 5 else np.full(k * k, i),
                                minlength=5)
                recs.append(ProfileRecord(p, k, tuple(int(v) for v in h),
                                          float(h @ [4, 3, 2, 1, 0]), float(h @ [2, 2, 1, 1, 0])))
    return Predictor.fit(recs)


@pytest.fixture(scope='module')
def parts():
    torch.manual_seed(1)
    model = TileDetector(CFG).eval()
    gate = CompressionGuidingGate().eval()
    edge = EdgeDetector(model, EdgeConfig(score_threshold=0.0, max_detections=20), {})
    return model, gate, edge


def headset(model, gate, **slo) -> HeadsetGate:
    return HeadsetGate(gate, model, synthetic_predictor(), AccuracyTable(),
                       SloConfig(**slo))


def level0_frame(model, gate, seed: int, k: int = 3) -> GateFrame:
    """The headset step on generated scene `seed`: every tile at level 0, sent."""
    frame = generate_scene(SceneConfig(width=320, height=240), seed).rgb
    return headset(model, gate, k_options=(k,), policy='fixed', fixed_level=0).process(
        frame, 1, 'cam')


@pytest.mark.parametrize('encoding', ['raw', 'png', 'png_mosaic'])
@pytest.mark.parametrize('slo_ms', [0.0, 30.0])
def test_frame_to_detections_equals_running_the_detector(parts, encoding, slo_ms) -> None:
    model, gate, edge = parts
    frame = generate_scene(SceneConfig(width=320, height=240), 7).rgb
    step = headset(model, gate, latency_ms=slo_ms)
    out = step.process(frame, 123, 'cam')
    d = out.decision
    assert set(out.tiles) == set(d.sent_tiles)
    msg = pack_tile_batch(d, _header(), out.tiles, encoding)
    assert len(msg.tile_indices) == len(d.sent_tiles)
    decision, tiles = unpack_tile_batch(msg)
    result = edge.run(decision, tiles)
    # the reference: the same levels run on the whole resized frame
    p = P_OPTIONS[d.p_index]
    ex = edge.executors[p]
    grid = ex.grid(128, 96, d.k, d.halo)
    x = normalise(torch.from_numpy(out.input_image.copy()).permute(2, 0, 1)[None])
    with torch.no_grad():
        ref = decode(model.back(p, ex.stitch(crop_frames(x, grid), np.array(d.levels), grid)),
                     4, 0.0, 20)[0]
    # in the 320 x 240 frame's pixels, clipped to it
    np.testing.assert_allclose(result.boxes, np.clip(ref.boxes * 2.5, 0, [320, 240, 320, 240]),
                               atol=1e-3)
    np.testing.assert_array_equal(result.class_ids, ref.classes)
    assert (result.boxes >= 0).all() and (result.boxes <= [320, 240, 320, 240]).all()
    if slo_ms:
        assert d.predicted_latency_ms <= slo_ms or not d.fits_slo


def _header():
    from std_msgs.msg import Header
    return Header(frame_id='cam')


def test_tighter_slo_sends_less(parts) -> None:
    model, gate, _ = parts
    frame = generate_scene(SceneConfig(width=320, height=240), 3).rgb
    loose = headset(model, gate, latency_ms=0.0).process(frame, 1, 'cam').decision
    tight = headset(model, gate, latency_ms=15.0).process(frame, 1, 'cam').decision
    assert sum(tight.levels) / tight.k ** 2 > sum(loose.levels) / loose.k ** 2


def test_edge_rejects_what_it_cannot_serve(parts) -> None:
    model, gate, edge = parts
    frame = generate_scene(SceneConfig(width=320, height=240), 4).rgb
    out = headset(model, gate).process(frame, 1, 'cam')
    d = out.decision
    narrow = EdgeDetector(model, EdgeConfig(k_options=(5,)), {})
    with pytest.raises(ConfigError, match='not served'):
        narrow.run(d, out.tiles)
    with pytest.raises(GeometryError, match='takes 128x96'):
        edge.run(replace(d, input_size=(256, 192)), out.tiles)
    moved = d.tile_rects.copy()
    moved[:, [0, 2]] += 4
    with pytest.raises(GeometryError, match='different models'):
        edge.run(replace(d, tile_rects=moved), out.tiles)
    msg = pack_tile_batch(d, _header(), out.tiles, 'raw')
    first = d.sent_tiles[0]
    msg.tiles[0].width -= 1
    msg.tiles[0].step -= 3
    with pytest.raises(DataError, match=f'tile {first} is'):
        unpack_tile_batch(msg)
    empty = pack_tile_batch(d, _header(), out.tiles, 'raw')
    empty.tile_indices, empty.tiles = [], []
    with pytest.raises(DataError, match='empty TileBatch'):
        unpack_tile_batch(empty)
    mosaic = pack_tile_batch(d, _header(), out.tiles, 'png_mosaic')
    mosaic.compressed_tiles = mosaic.compressed_tiles * 2
    with pytest.raises(DataError, match='carries one image, got 2'):
        unpack_tile_batch(mosaic)
    small = pack_tile_batch(replace(d, input_size=(64, 48)), _header(), out.tiles, 'png_mosaic')
    small.decision = mosaic.decision
    with pytest.raises(DataError, match='mosaic is 64x48 but the network input is 128x96'):
        unpack_tile_batch(small)
    with pytest.raises(DataError, match=f'tile {first} is'):
        pack_tile_batch(d, _header(), {**out.tiles, first: out.tiles[first][1:]}, 'jpeg_mosaic')
    with pytest.raises(EncodingError, match="'webp' is not one of"):
        pack_tile_batch(d, _header(), out.tiles, 'webp')
    # every tile skipped is legitimate: nothing is computed and nothing is found
    skipped = replace(d, levels=(4,) * len(d.levels))
    for encoding in ('jpeg', 'jpeg_mosaic'):
        batch = pack_tile_batch(skipped, _header(), {}, encoding)
        assert batch.payload_bytes == 0
        decision, tiles = unpack_tile_batch(batch)
        assert tiles == {}
        result = edge.run(decision, tiles)
        assert result.boxes.shape == (0, 4) and result.tiles_run == 0


def test_mosaic_sends_fewer_bytes_than_one_jpeg_per_tile(parts) -> None:
    """On a real scene the mosaic carries the same tiles (within JPEG loss) in fewer bytes:
    one header, shared halos sent once."""
    model, gate, _ = parts
    out = level0_frame(model, gate, 11)
    per_tile = pack_tile_batch(out.decision, _header(), out.tiles, 'jpeg')
    mosaic = pack_tile_batch(out.decision, _header(), out.tiles, 'jpeg_mosaic')
    assert len(mosaic.compressed_tiles) == 1 and len(per_tile.compressed_tiles) == 9
    assert mosaic.payload_bytes < 0.8 * per_tile.payload_bytes
    _, via_mosaic = unpack_tile_batch(mosaic)
    _, via_tiles = unpack_tile_batch(per_tile)

    def error(tiles: dict) -> float:  # mean absolute error, grey levels
        return float(np.mean([np.abs(tiles[i].astype(int) - t.astype(int)).mean()
                              for i, t in out.tiles.items()]))
    # one JPEG block grid for the whole input instead of one per tile: about as lossy (a tile
    # cut from the wrong place would be off by tens of grey levels)
    assert error(via_mosaic) < 1.25 * error(via_tiles)


@pytest.mark.parametrize('block', [1, 8, 16])
def test_mosaic_continues_tiles_to_the_block_grid_without_touching_them(parts, block) -> None:
    model, gate, _ = parts
    out = level0_frame(model, gate, 12)
    d = replace(out.decision, levels=(0, 4, 4, 4, 4, 4, 4, 4, 0))  # two corner tiles
    tiles = {i: out.tiles[i] for i in d.sent_tiles}
    mosaic = paste_mosaic(d, tiles, block)
    width, height = d.input_size
    carried = np.zeros((height, width), bool)
    for i, tile in tiles.items():
        (rows, cols), inside = overlap(d.tile_rects[i], width, height)
        np.testing.assert_array_equal(mosaic[rows, cols], tile[inside])
        carried[rows, cols] = True
    assert height % block == 0 and width % block == 0
    blocks = np.kron(carried.reshape(height // block, block, width // block, block).any((1, 3)),
                     np.ones((block, block), int)).astype(bool)
    assert not mosaic[~blocks].any()  # outside the carried blocks: blank
    if block > 1:  # the partly carried blocks are continued, not black
        assert mosaic[blocks & ~carried].any()
    else:
        assert not mosaic[~carried].any()


def test_block_continued_jpeg_mosaic_is_smaller(parts) -> None:
    model, gate, _ = parts
    out = level0_frame(model, gate, 13)
    d = replace(out.decision, levels=(0, 4, 0, 4, 0, 4, 0, 4, 0))
    tiles = {i: out.tiles[i] for i in d.sent_tiles}
    sizes = {block: len(numpy_to_compressed(paste_mosaic(d, tiles, block), 'jpeg', 90).data)
             for block in (1, JPEG_BLOCK)}
    assert sizes[JPEG_BLOCK] < sizes[1]


def test_mosaic_block_must_be_positive(parts) -> None:
    model, gate, _ = parts
    out = level0_frame(model, gate, 12, k=2)
    with pytest.raises(ConfigError, match='block must be >= 1'):
        paste_mosaic(out.decision, out.tiles, 0)


def test_a_frame_resized_before_the_gate_keeps_its_camera_size(parts) -> None:
    from neulens_ros.data.resize import box_resize
    model, gate, _ = parts
    frame = generate_scene(SceneConfig(width=320, height=240), 3).rgb
    step = headset(model, gate, policy='fixed', fixed_level=0)
    whole = step.process(frame, 1, 'cam')
    small = step.process(box_resize(frame, step.input_size), 1, 'cam', image_size=(320, 240))
    assert whole.decision.image_size == small.decision.image_size == (320, 240)
    np.testing.assert_array_equal(whole.input_image, small.input_image)
    assert whole.decision.levels == small.decision.levels
    assert step.process(small.input_image, 1, 'cam').decision.image_size == step.input_size


def test_the_headset_levels_a_kinds_gates_choice_by_its_calibrated_rule(parts) -> None:
    from neulens_ros.eval.oracle import OracleRule
    from neulens_ros.gate.kind_labels import chosen_kinds
    model, gate, _ = parts
    frame = generate_scene(SceneConfig(width=320, height=240), 4).rgb
    slo = SloConfig(k_options=(3,), latency_ms=0.0)  # no SLO: the gate's levels are used
    rule = OracleRule(1, 3, 4)
    plain, ruled = (HeadsetGate(gate, model, synthetic_predictor(), AccuracyTable(), slo,
                                kind_rule=r).process(frame, 1, 'cam') for r in (None, rule))
    chosen = np.array(plain.decision.gate_levels)
    assert list(ruled.decision.gate_levels) == rule.levels(chosen_kinds(chosen)).tolist()
    assert list(ruled.decision.gate_levels) != list(chosen)  # the rule moved some tiles
    assert list(ruled.decision.levels) == list(ruled.decision.gate_levels)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_earlier_detections_cap_the_gates_levels_where_they_were(parts, k: int) -> None:
    from neulens_ros.gate.prior import PreviousDetections, PriorConfig, apply_prior
    model, _, _ = parts
    gate = CompressionGuidingGate().eval()
    with torch.no_grad():  # a gate that skips every tile
        gate.fc.weight.zero_()
        gate.fc.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 9.0]))
    frame = generate_scene(SceneConfig(width=320, height=240), 4).rgb
    step = HeadsetGate(gate, model, synthetic_predictor(), AccuracyTable(),
                       SloConfig(k_options=(k,), latency_ms=0.0))
    alone = step.process(frame, 1, 'cam')
    assert set(alone.decision.gate_levels) == {4} and not alone.tiles
    seen = PreviousDetections(np.array([[2.0, 2.0, 20.0, 20.0]]), np.array([0.9]),
                              PriorConfig(margin_px=0.0))
    capped = step.process(frame, 2, 'cam', previous=seen)
    levels = np.array(capped.decision.gate_levels)
    assert levels[0] == 0 and (levels[1:] == 4).all()  # the top-left tile owns the centre
    assert set(capped.tiles) == {0}
    assert levels.tolist() == apply_prior(np.full(k * k, 4), seen.boxes, seen.scores,
                                          step.owned[k], seen.config).tolist()
    faint = replace(seen, scores=np.array([0.1]))  # below the score threshold: no prior
    assert set(step.process(frame, 3, 'cam', previous=faint).decision.gate_levels) == {4}


@pytest.mark.parametrize('boxes, scores', [(np.zeros((2, 4)), np.zeros(1)),
                                           (np.zeros((2, 3)), np.zeros(2))])
def test_previous_detections_are_validated(boxes, scores) -> None:
    from neulens_ros.gate.prior import PreviousDetections, PriorConfig
    with pytest.raises(DataError, match='previous detections need'):
        PreviousDetections(boxes, scores, PriorConfig())


def test_edge_boxes_stay_inside_the_frame() -> None:
    torch.manual_seed(1)
    model = TileDetector(CFG).eval()
    with torch.no_grad():  # every peak predicts a box 50 cells (200 px) wide and high
        model.size.weight.zero_()
        model.size.bias.fill_(50.0)
    edge = EdgeDetector(model, EdgeConfig(score_threshold=0.0, max_detections=20), {})
    frame = generate_scene(SceneConfig(width=320, height=240), 7).rgb
    out = headset(model, CompressionGuidingGate().eval(), k_options=(3,), policy='fixed',
                  fixed_level=0).process(frame, 1, 'cam')
    result = edge.run(*unpack_tile_batch(pack_tile_batch(out.decision, _header(), out.tiles,
                                                         'png')))
    assert len(result.boxes) == 20
    assert (result.boxes >= 0).all() and (result.boxes <= [320, 240, 320, 240]).all()
    assert ((result.boxes[:, 0] == 0) | (result.boxes[:, 2] == 320)).any()  # some were cut


def test_the_headset_names_a_gate_calibrated_for_other_tiles(tmp_path) -> None:
    import shutil
    from neulens_ros.models.registry import resolve
    shipped = HeadsetGate.load(SloConfig(), 'neulens_cgg', 'neulens_detector')
    assert shipped.calibration_warning is None
    # the easy gate with a calibration made on 2 px tiles, beside the paper-halo detector
    source = resolve('neulens_cgg')
    shutil.copy(source, tmp_path / 'gate.pt')
    meta = json.loads(source.with_suffix('.json').read_text())
    meta['calibration'] = {**(meta.get('calibration') or {}), 'halo': '2'}
    (tmp_path / 'gate.json').write_text(json.dumps(meta))
    other = HeadsetGate.load(SloConfig(), str(tmp_path / 'gate.pt'), 'neulens_detector')
    assert "calibrated with tiles at the '2' halo" in other.calibration_warning
    assert "runs them with 'paper'" in other.calibration_warning
