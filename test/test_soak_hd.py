"""scripts/soak_hd.py, short: the HD camera of its own feeds `neulens-pipeline --no-sample-data`
and the JSON report's counts fit together."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SOAK = Path(__file__).resolve().parent.parent / 'scripts' / 'soak_hd.py'
SECONDS = 6.0
RATE_HZ = 30.0


@pytest.mark.ros
@pytest.mark.slow
def test_soak_report_counts_fit_together(tmp_path: Path, ros_env: dict[str, str]) -> None:
    out = tmp_path / 'soak.json'
    run = subprocess.run(
        [sys.executable, str(SOAK), '--duration', str(SECONDS), '--rate', str(RATE_HZ),
         '--window', '2', '--preload', '3', '--namespace', 'soaktest',
         '--log-dir', str(tmp_path / 'logs'), '--out', str(out)],
        env=ros_env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert json.loads(run.stdout) == report
    published = report['frames_published']
    assert published >= 0.8 * SECONDS * RATE_HZ, report['camera']
    assert 0 < report['out_3d'] <= report['answered_2d'] <= report['gate_frames'] <= published
    assert report['share_3d_of_2d'] == round(report['out_3d'] / report['answered_2d'], 3)
    drops = report['drops']
    assert drops['camera_to_gate'] == published - report['gate_frames']
    assert drops['2d_to_3d'] == report['answered_2d'] - report['out_3d']
    assert set(drops['node_counters']) == {'gate', 'supernet', 'lifting'}
    latency = report['latency_3d']
    assert 0 < latency['p50_ms'] <= latency['p99_ms']
    assert latency['first_window_frames'] > 0 and latency['last_window_frames'] > 0
    assert set(report['rss_mb']) == {'gate', 'supernet', 'lifting'}
    for node, m in report['rss_mb'].items():
        assert 0 < m['ready'] and 0 < m['start'] <= m['peak'] and 0 < m['end'], (node, m)
        assert m['warm'] is not None and abs(m['leak'] - (m['end'] - m['warm'])) <= 0.15, (node, m)
        assert m['slope_mib_per_1000_frames'] is not None, (node, m)
        samples = report['rss_samples'][node]
        assert samples[0][0] == 0.0 and len(samples) >= SECONDS - 1, (node, samples)
        assert m['peak'] == max(sample[1] for sample in samples), (node, m)
        assert all(0 < anon <= rss and 0 <= shmem <= rss for _, rss, anon, shmem in samples)
        assert 0 < m['anon']['end'] <= m['end'], (node, m)
    assert set(report['cpu']) == {'gate', 'supernet', 'lifting'}
    camera_hz = report['camera']['rate_hz']  # as measured: a busy camera falls short of RATE_HZ
    for node, use in report['cpu'].items():
        assert 0 < use['cores'] <= 2.5, (node, use)  # busy while streaming, at most all cores
        assert use['ms_per_camera_frame'] == pytest.approx(1e3 * use['cores'] / camera_hz,
                                                           abs=0.02), (node, use)
    assert report['restarts'] == []


def load_soak() -> Any:
    spec = importlib.util.spec_from_file_location('soak_hd', SOAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('points, start, end, cores', [
    ([(0.0, 1.0), (1.0, 1.5), (2.0, 2.0), (3.0, 3.0)], 1.0, 3.0, 0.75),  # before start left out
    ([(0.0, 1.0), (4.0, 3.0)], 0.0, 4.0, 0.5),
    ([(0.0, 1.0)], 0.0, 4.0, None),  # one sample: no rate
    ([(0.0, 1.0), (4.0, 3.0)], None, 4.0, None)])  # streaming never started
def test_cpu_use_is_cpu_seconds_per_second_while_streaming(
        points: list[tuple[float, float]], start: float | None, end: float,
        cores: float | None) -> None:
    use = load_soak().cpu_use({'gate': points}, start, end, 30.0)['gate']
    assert use['cores'] == cores
    assert use['ms_per_camera_frame'] == (None if cores is None else round(1e3 * cores / 30, 2))


def test_cpu_seconds_of_this_process_and_of_none() -> None:
    soak = load_soak()
    used = soak.cpu_seconds(os.getpid())
    assert used is not None and used > 0
    assert soak.cpu_seconds(2 ** 22 + 12345) is None  # beyond pid_max: no such process
