"""neulens-bench slo: the sweep's JSON, the contention run with a co-running DNN process (and
the older CPU burners), its per-frame feasibility and scores, and its option checks (no timing
assertions: speed is reported by the benchmark, not asserted by tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neulens_ros.errors import ConfigError, NeulensError
from neulens_ros.models.names import CHECKPOINTS
from neulens_ros.tools.bench_slo import (CORRECTIONS, POLICIES, CoRunner, Load, main, slo_for,
                                         variants)
from neulens_ros.tools.corunner import DutyCycle


def our_children() -> list[str]:
    """Command lines of this process's live child processes (from /proc)."""
    out = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
            cmdline = (stat.parent / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and fields[0] != 'Z':
            out.append(cmdline)
    return out


def test_quick_slo_sweep_reports_every_policy(tmp_path) -> None:
    detector, gate, _ = CHECKPOINTS['easy']  # whose mAP@0.5 is checked below
    assert main(['--quick', '--contention-frames', '0', '--detector', detector, '--gate', gate,
                 '--out', str(tmp_path)]) == 0
    data = json.loads((tmp_path / 'slo.json').read_text())
    rows = data['sweep']
    assert {(r['policy'], r['slo_fraction']) for r in rows} == {
        (p, f) for p in POLICIES for f in (0.8, 1.2)}
    for r in rows:
        assert r['met_fraction'] is None or 0.0 <= r['met_fraction'] <= 1.0
        assert 0.0 <= r['dropped_fraction'] <= 1.0 and 0.0 <= r['map50'] <= 1.0
        assert r['slo_ms'] == pytest.approx(r['slo_fraction'] * r['level0_ms'])
        if r['policy'] == 'image':
            assert r['skipped_tile_fraction'] == 0.0  # one width for the frame, never dropped
    assert max(r['map50'] for r in rows if r['slo_fraction'] == 1.2) > 0.5
    for fraction in (0.8, 1.2):  # one level-0 reference per SLO point, shared by the policies
        assert len({r['level0_ms'] for r in rows if r['slo_fraction'] == fraction}) == 1
    assert data['contention'] is None
    assert (tmp_path / 'slo_sweep.png').is_file()
    assert not (tmp_path / 'slo_contention.png').exists()


def check_contention(data: dict, frames: int) -> dict:
    """The contention run's per-frame lists agree with its scores; returns the run."""
    cont = data['contention']
    start, end = cont['contention_frames']
    assert (start, end) == (frames // 3, 2 * frames // 3)
    runs = cont['variants']
    assert list(runs) == list(CORRECTIONS)
    for run in runs.values():
        assert len(run['latency_ms']) == frames
        kept = [v for v, d in zip(run['latency_ms'], run['dropped'], strict=True) if not d]
        assert run['dropped_fraction'] == pytest.approx(1 - len(kept) / frames)
        assert not any(run['load_on'][:start]) and not any(run['load_on'][end:])
        for floor, s, ok in zip(run['floor_ms'], run['slowdown'], run['feasible'],
                                strict=True):
            assert s > 0
            if abs(floor * s - cont['slo_ms']) > 0.01 * cont['slo_ms']:  # JSON rounds them
                assert ok == (floor * s <= cont['slo_ms'])
        hits = [w for w, ok in zip(run['met'], run['feasible'], strict=True) if ok]
        assert run['within'] == pytest.approx(sum(run['met']) / frames)
        if hits:
            assert run['within_feasible'] == pytest.approx(sum(hits) / len(hits))
        assert run['infeasible_fraction'] == pytest.approx(1 - sum(run['feasible']) / frames)
        assert run['gain_feasible'] == pytest.approx(
            run['within_feasible'] - runs['none']['within_feasible'])
        assert run['during']['frames'] == end - start
        assert run['mean_level'] is None or 0.0 <= run['mean_level'] <= 3.0
    assert runs['none']['gain_feasible'] == 0.0
    return cont


def test_contention_with_a_co_running_dnn_is_the_default(tmp_path) -> None:
    frames = 12
    assert main(['--quick', '--frames', '0', '--contention-frames', str(frames),
                 '--corunner-on', '0.3', '--corunner-off', '0.2', '--out', str(tmp_path)]) == 0
    data = json.loads((tmp_path / 'slo.json').read_text())
    cont = check_contention(data, frames)
    assert cont['load'].startswith('co-running DNN process')
    assert data['sweep'] == [] and (tmp_path / 'slo_contention.png').is_file()
    assert not [c for c in our_children() if 'corunner' in c]  # ended by PID


@pytest.mark.slow
def test_contention_with_cpu_burners_stays_available(tmp_path) -> None:
    frames = 9
    assert main(['--quick', '--frames', '0', '--contention-frames', str(frames),
                 '--contention', 'burner', '--burners', '1', '--out', str(tmp_path)]) == 0
    cont = check_contention(json.loads((tmp_path / 'slo.json').read_text()), frames)
    assert cont['load'] == '1 CPU burner(s)'
    assert all(all(r['load_on'][3:6]) for r in cont['variants'].values())
    assert not [c for c in our_children() if 'time.monotonic' in c]


def test_corunner_runs_its_duty_cycle_and_ends_by_itself() -> None:
    out = subprocess.run([sys.executable, '-m', 'neulens_ros.tools.corunner', '--seconds',
                          '0.6', '--on', '0.2', '--off', '0.2'], capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()
    assert out[0].startswith('ready ') and json.loads(out[-1])['inferences'] >= 1


def test_corunner_that_cannot_start_is_a_clear_error() -> None:
    with pytest.raises(NeulensError, match='did not start'):
        CoRunner('no-such-detector', DutyCycle(0.2, 0.2), 5.0, 1)
    assert not [c for c in our_children() if 'corunner' in c]


def test_duty_cycle_phases() -> None:
    cycle = DutyCycle(1.5, 1.0)
    assert [cycle.is_on(t) for t in (-0.1, 0.0, 1.4, 1.6, 2.4, 2.6, 5.1)] == [
        False, True, True, False, False, True, True]
    assert DutyCycle(1.0, 0.0).is_on(7.3)  # no off phase: always on


@pytest.mark.parametrize('kwargs', [dict(on_s=0.0, off_s=1.0), dict(on_s=1.0, off_s=-1.0)])
def test_invalid_duty_cycle(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match='duty cycle'):
        DutyCycle(**kwargs)


@pytest.mark.parametrize('kwargs', [dict(kind='fan'), dict(burners=0), dict(threads=0)])
def test_invalid_load(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Load(**kwargs)


@pytest.mark.parametrize('argv', [['--contention', 'fan'], ['--corunner-on', '0'],
                                  ['--corunner-threads', '0'], ['--quantile', '1.5'],
                                  ['--alpha', '0'], ['--frames', '-1'],
                                  ['--contention-ref', 'guess']])
def test_invalid_options_are_usage_errors(argv: list[str], tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, '--out', str(tmp_path)])
    assert exc.value.code == 2 and 'usage' in capsys.readouterr().err
    assert not (tmp_path / 'slo.json').exists()


def test_slo_sweep_variants_name_their_clg_order() -> None:
    assert variants(False) == POLICIES
    assert set(variants(True)) - set(POLICIES) == {'cs_plain', 'uniform_plain', 'min_plain'}
    plain, narrow = slo_for('cs_plain', 12.0), slo_for('cs', 12.0)
    assert (plain.policy, plain.skip_last, plain.latency_ms) == ('cs', False, 12.0)
    assert (narrow.policy, narrow.skip_last) == ('cs', True)
