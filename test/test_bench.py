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
    assert {'untiled', 'level0', 'level3', 'mixed', 'level0_per_tile_calls'} <= names
    for r in records:
        assert r['latency_ms'] > 0 and r['macs'] >= 0
        base = next(b for b in records if b['backend'] == r['backend'] and b['variant']
                    == 'level0' and b['p'] == r['p'] and b['k'] == r['k'])
        assert r['mac_ratio'] == pytest.approx(r['macs'] / base['macs'])
    levels = [next(r for r in records if r['backend'] == 'torch' and r['variant'] == f'level{i}')
              for i in range(4)]
    assert [r['mac_ratio'] for r in levels] == sorted((r['mac_ratio'] for r in levels),
                                                      reverse=True)
    assert (tmp_path / 'bench_latency_vs_macs.png').is_file()
