"""neulens-bench --quick: JSON schema and ratios consistent with the MAC counter (no timing
assertions: speed is reported by the benchmark, not asserted by tests)."""

import json

import pytest

from neulens_ros.tools.bench import main


@pytest.mark.slow
def test_quick_bench_writes_consistent_records(tmp_path) -> None:
    assert main(['--quick', '--models', 'detector', '--backends', 'torch,onnxruntime',
                 '--out', str(tmp_path), '--cache-dir', str(tmp_path / 'cache')]) == 0
    data = json.loads((tmp_path / 'bench.json').read_text())
    records = data['records']
    assert {r['backend'] for r in records} == {'torch', 'onnxruntime'}
    names = {r['variant'] for r in records}
    assert {'untiled', 'level0', 'level3', 'mixed', 'level0_per_tile_calls', 'masked2',
            'level3_bf16'} <= names
    for r in records:
        assert r['latency_ms'] > 0 and r['macs'] >= 0
        base = next(b for b in records if b['backend'] == r['backend'] and b['variant']
                    == 'level0' and b['p'] == r['p'] and b['k'] == r['k'])
        assert r['mac_ratio'] == pytest.approx(r['macs'] / base['macs'])
    assert all(r['mac_ratio'] == 1.0 for r in records if r['variant'].startswith('masked'))
    assert all(r['macs'] == next(b['macs'] for b in records if b['variant'] == r['variant'][:-5]
                                 and b['backend'] == r['backend'])
               for r in records if r['variant'].endswith('_bf16'))
    levels = [next(r for r in records if r['backend'] == 'torch' and r['variant'] == f'level{i}')
              for i in range(4)]
    assert [r['mac_ratio'] for r in levels] == sorted((r['mac_ratio'] for r in levels),
                                                      reverse=True)
    macs = {r['variant']: r['macs'] for r in records if r['backend'] == 'torch'}
    assert macs['level0_halo_exact'] > macs['level0_halo_8'] > macs['level0']  # halo overhead
    assert not any('halo' in r['variant'] for r in records if r['backend'] == 'onnxruntime')
    assert (tmp_path / 'bench_latency_vs_macs.png').is_file()


@pytest.mark.parametrize('level', [1, 2, 3])
def test_masked_baseline_zeroes_channels_beyond_the_level_width(level: int) -> None:
    import torch

    from neulens_ros.supernet.detector import TileDetector
    from neulens_ros.supernet.slim import SlimConv2d, level_width
    from neulens_ros.tools.bench import masked
    torch.manual_seed(0)
    front = TileDetector().eval().front('layer2')
    last = [m for m in front.modules() if isinstance(m, SlimConv2d)][-1]
    x = torch.randn(1, 3, 64, 64)
    seen = []

    def run() -> None:  # a probe registered after the masks sees what they return
        probe = last.register_forward_hook(lambda m, i, out: seen.append(out))
        try:
            front(x)
        finally:
            probe.remove()
    with torch.no_grad():
        masked(front, level, run)
        run()  # the masks are gone again
    width = level_width(last.out_channels, level)
    assert seen[0].shape[1] == last.out_channels  # computed at full width
    assert seen[0][:, width:].abs().max() == 0 and seen[0][:, :width].abs().max() > 0
    assert seen[1][:, width:].abs().max() > 0


def test_gate_bench_times_both_backends_of_one_function(tmp_path) -> None:
    assert main(['gate', '--images', '2', '--rounds', '3', '--out', str(tmp_path)]) == 0
    data = json.loads((tmp_path / 'gate.json').read_text())
    assert set(data['per_k_ms']) == {'k2', 'k3', 'k4'}
    for row in data['per_k_ms'].values():
        assert set(row) == {'torch', 'onnxruntime', 'inputs'} and min(row.values()) > 0
    assert data['frame_all_k_ms']['torch'] == pytest.approx(
        sum(row['torch'] for row in data['per_k_ms'].values()))
    assert data['agreement']['same_level_share'] == 1.0
    assert data['agreement']['max_logit_difference'] < 1e-3
    assert (tmp_path / 'gate_cost.png').is_file()


def test_bench_times_the_detector_it_is_given(tmp_path, capsys) -> None:
    from neulens_ros.models.names import CHECKPOINTS
    from neulens_ros.models.zoo import detector_metadata
    from neulens_ros.tools.bench import bench_models
    for preset in sorted(CHECKPOINTS):
        name = CHECKPOINTS[preset][0]
        (model,) = bench_models(['detector'], name)
        size = detector_metadata(name)['architecture']
        assert model.size == (size['input_height'], size['input_width'])
        assert set(model.fronts) == {'stem', 'layer1', 'layer2'}
    easy, hard = (bench_models(['detector'], CHECKPOINTS[p][0])[0] for p in ('easy', 'hard'))
    assert easy.tag != hard.tag  # different weights: different ONNX caches
    assert main(['--models', 'detector', '--detector', 'nope', '--out', str(tmp_path)]) == 2
    assert 'nope' in capsys.readouterr().err
