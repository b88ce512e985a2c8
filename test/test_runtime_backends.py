"""Inference backends: ONNX Runtime and TorchScript match eager PyTorch; cache and errors."""

import numpy as np
import pytest
import torch

from neulens_ros.errors import BackendError
from neulens_ros.runtime.backends import (LevelFront, make_runners, model_hash, onnx_paths,
                                          ort_runners, ort_session_options, tile_shapes,
                                          tensorrt_available)
from neulens_ros.supernet.detector import P_OPTIONS, DetectorConfig, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, crop_frames
from neulens_ros.supernet.tiling import tile_grid, window_chain

SMALL = DetectorConfig(input_width=128, input_height=96)


@pytest.fixture(scope='module')
def model() -> TileDetector:
    torch.manual_seed(0)
    return TileDetector(SMALL).eval()


@pytest.mark.parametrize('backend', ['onnxruntime', 'torchscript'])
def test_static_backends_match_eager(model: TileDetector, tmp_path, backend: str) -> None:
    name, runners = make_runners(model, backend, 'fp32', str(tmp_path), 16)
    assert name == backend and set(runners) == {'stem', 'layer1', 'layer2'}
    image = torch.randn(1, 3, 96, 128)
    for p in ('layer1', 'layer2'):
        eager = MicroFlowExecutor(model, p)
        ort = MicroFlowExecutor(model, p, runners[p])
        for k, levels in ((2, [0, 1, 2, 3]), (3, [3, 0, 4, 1, 2, 0, 4, 3, 1])):
            grid = eager.grid(128, 96, k)
            with torch.no_grad():
                a = eager.stitch(crop_frames(image, grid), np.array(levels), grid)
                b = ort.stitch(crop_frames(image, grid), np.array(levels), grid)
            assert (a - b).abs().max() / a.abs().max() < 1e-4
            assert sum(ort.tiles_run.values()) == sum(lv != 4 for lv in levels)  # skips free
            assert set(ort.calls) == {lv for lv in levels if lv != 4}  # one call per level
            ort.tiles_run.clear()
            ort.calls.clear()


def test_cache_is_reused_and_damage_is_rebuilt(model: TileDetector, tmp_path) -> None:
    make_runners(model, 'onnxruntime', 'fp32', str(tmp_path), 4)
    paths = onnx_paths({p: model.front(p) for p in P_OPTIONS}, model_hash(model), str(tmp_path))
    stamp = {key: p.stat().st_mtime_ns for key, p in paths.items()}
    make_runners(model, 'onnxruntime', 'fp32', str(tmp_path), 4)
    assert {key: p.stat().st_mtime_ns for key, p in paths.items()} == stamp
    damaged = paths[('stem', 1)]
    damaged.write_bytes(b'not an onnx file')
    _, runners = make_runners(model, 'onnxruntime', 'fp32', str(tmp_path), 4)
    assert damaged.stat().st_size > 100
    assert runners['stem'][1](torch.zeros(1, 3, 32, 32)).shape[0] == 1


@pytest.mark.parametrize('threads', [0, 2])
def test_ort_sessions_do_not_spin(threads: int) -> None:
    ort = pytest.importorskip('onnxruntime')
    options = ort_session_options(ort, threads)
    assert options.get_session_config_entry('session.intra_op.allow_spinning') == '0'
    assert options.intra_op_num_threads == threads


def test_ort_sessions_are_specialised_to_the_paper_tile_sizes(model: TileDetector,
                                                              tmp_path) -> None:
    _, runners = make_runners(model, 'onnxruntime', 'fp32', str(tmp_path), 16)
    shapes = tile_shapes({p: model.front(p) for p in P_OPTIONS}, (96, 128))
    torch.manual_seed(3)
    for p in P_OPTIONS:
        assert len(shapes[p]) >= 2  # k = 2, 3, 4 cut tiles of different sizes
        for lv, runner in runners[p].items():
            assert set(runner.sized) == shapes[p]
            for (n, h, w), session in runner.sized.items():
                assert n is None
                assert session.get_inputs()[0].shape[1:] == [3, h, w]  # only N is dynamic
                x = torch.randn(3, 3, h, w)
                with torch.no_grad():
                    expected = LevelFront(model.front(p), lv)(x)
                np.testing.assert_allclose(runner(x).numpy(), expected.numpy(),
                                           atol=1e-4 * float(expected.abs().max()))
            assert runner.dynamic.get_inputs()[0].shape[2:] == ['h', 'w']


@pytest.mark.parametrize('halo', ['paper', '2'])
@pytest.mark.parametrize('batches', [False, True])
def test_tile_shapes(model: TileDetector, batches: bool, halo: str) -> None:
    fronts = {p: model.front(p) for p in P_OPTIONS}
    shapes = tile_shapes(fronts, (96, 128), (2, 3), batches, halo)
    for p, front in fronts.items():
        chain = window_chain(front)
        sizes = set()
        for k in (2, 3):
            grid = tile_grid(chain, 128, 96, k, halo)
            for t in range(k * k):
                w, h = grid.tile_input_size(t)
                sizes.add((None, h, w))
                assert ({(n, h, w) for n in range(1, k * k + 1)} <= shapes[p]) == batches
        assert {s for s in shapes[p] if s[0] is None} == sizes
        assert ((1, 96, 128) in shapes[p]) == batches


def test_ort_sessions_follow_the_models_halo(model: TileDetector, tmp_path) -> None:
    fronts = {p: model.front(p) for p in P_OPTIONS}
    _, runners = make_runners(model, 'onnxruntime', 'fp32', str(tmp_path), 9, ks=(3,),
                              halo='2')
    two = tile_shapes(fronts, (96, 128), (3,), halo='2')
    assert two != tile_shapes(fronts, (96, 128), (3,))  # a halo of its own, sizes of its own
    for p in P_OPTIONS:
        assert all(set(runner.sized) == two[p] for runner in runners[p].values())


class CountingSession:
    """An ONNX Runtime session that counts its runs."""

    def __init__(self, session) -> None:
        self.session, self.runs = session, 0

    def run(self, *args):
        self.runs += 1
        return self.session.run(*args)


def test_ort_runner_takes_the_session_of_the_exact_shape(model: TileDetector,
                                                         tmp_path) -> None:
    p, lv = 'layer2', 2
    w, h = tile_grid(window_chain(model.front(p)), 128, 96, 3, 'paper').tile_input_size(0)
    runners = ort_runners({p: model.front(p)}, model_hash(model), str(tmp_path), (96, 128), 1,
                          {p: {(None, h, w), (3, h, w)}})
    runner = runners[p][lv]
    assert runner.sized[(3, h, w)].get_inputs()[0].shape == [3, 3, h, w]  # fully static
    assert runner.sized[(None, h, w)].get_inputs()[0].shape == ['n', 3, h, w]
    counters = {key: CountingSession(sess) for key, sess in runner.sized.items()}
    counters['dynamic'] = CountingSession(runner.dynamic)
    runner.sized = {key: counters[key] for key in runner.sized}
    runner.dynamic = counters['dynamic']
    torch.manual_seed(4)
    for x, used in ((torch.randn(3, 3, h, w), (3, h, w)), (torch.randn(2, 3, h, w), (None, h, w)),
                    (torch.randn(1, 3, h + 8, w), 'dynamic')):
        before = {key: c.runs for key, c in counters.items()}
        with torch.no_grad():
            expected = LevelFront(model.front(p), lv)(x)
        np.testing.assert_allclose(runner(x).numpy(), expected.numpy(),
                                   atol=1e-4 * float(expected.abs().max()))
        assert {key for key, c in counters.items() if c.runs > before[key]} == {used}


def test_model_hash_follows_weights(model: TileDetector) -> None:
    other = TileDetector(SMALL)
    assert model_hash(model) == model_hash(model) != model_hash(other)


def test_backend_errors(model: TileDetector) -> None:
    with pytest.raises(BackendError, match='unknown backend'):
        make_runners(model, 'openvino', 'fp32', '', 4)
    with pytest.raises(BackendError, match='fp16'):
        make_runners(model, 'torch', 'fp16', '', 4)
    assert make_runners(model, 'torch', 'fp32', '', 4) == ('torch', {})


@pytest.mark.gpu
def test_tensorrt_matches_eager(model: TileDetector, tmp_path) -> None:
    ok, reason = tensorrt_available()
    if not ok:
        pytest.skip(reason)
    _, runners = make_runners(model, 'tensorrt', 'fp32', str(tmp_path), 16)
    x = torch.randn(4, 3, 48, 64)
    eager = MicroFlowExecutor(model, 'layer1')
    with torch.no_grad():
        a = eager.run_level(2, x)
    b = runners['layer1'][2](x)
    assert (a - b).abs().max() / a.abs().max() < 1e-3


def test_edge_with_static_batches_matches_eager(model: TileDetector, tmp_path) -> None:
    """supernet_node's `static_batches`: sessions for every batch size of the served grids,
    the same features as the eager slimmable front."""
    from neulens_ros.pipeline.edge import EdgeConfig, EdgeDetector
    edge = EdgeDetector(model, EdgeConfig(backend='onnxruntime', static_batches=True,
                                          k_options=(2,), cache_dir=str(tmp_path)), {})
    eager = MicroFlowExecutor(model, 'layer2')
    ex = edge.executors['layer2']
    grid = ex.grid(128, 96, 2, 'paper')
    w, h = grid.tile_input_size(0)
    assert {(n, h, w) for n in range(1, 5)} <= set(ex.runners[0].sized)
    torch.manual_seed(5)
    image = torch.randn(1, 3, 96, 128)
    for levels in ([0, 0, 0, 0], [1, 3, 4, 1], [2, 4, 4, 4]):
        with torch.no_grad():
            expected = eager.stitch(crop_frames(image, grid), np.array(levels), grid)
            got = ex.stitch(crop_frames(image, grid), np.array(levels), grid)
        np.testing.assert_allclose(got.numpy(), expected.numpy(),
                                   atol=1e-4 * float(expected.abs().max()))
