"""neulens-train's halo stage: the supernet goes on training its tiles at the detector's halo,
resumably, and a run started from checkpoints exports the detector it trained."""

import json
from dataclasses import replace

import pytest
import torch

from neulens_ros.errors import ConfigError
from neulens_ros.models.zoo import load_detector, load_gate
from neulens_ros.tools.train import main
from neulens_ros.train.plan import FULL_HARD, SMOKE, Plan


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))


@pytest.mark.parametrize('halo,steps', [('2', 3), ('exact', 1), ('5', 7)])
def test_the_halo_stage_trains_the_tiles_at_the_plans_halo(halo: str, steps: int) -> None:
    cfg = replace(SMOKE, halo=halo, halo_steps=steps, halo_lr=1e-4).halo_training(seed=4)
    assert (cfg.halo, cfg.steps, cfg.lr, cfg.seed) == (halo, steps, 1e-4, 4)
    assert cfg.untiled_steps == 0 and cfg.batch_size == SMOKE.batch_size


@pytest.mark.parametrize('plan', [replace(SMOKE, halo='paper'), replace(FULL_HARD, halo_steps=0)])
def test_no_halo_stage_at_the_paper_halo_or_without_steps(plan: Plan) -> None:
    assert plan.halo_training(seed=0) is None


def test_the_hard_plan_trains_its_tiles_at_its_halo() -> None:
    cfg = FULL_HARD.halo_training(seed=0)
    assert cfg is not None and cfg.halo == FULL_HARD.halo == '2'


@pytest.mark.parametrize('change', [{'halo_steps': -1}, {'halo_lr': 0.0}, {'halo_lr': -1e-3}])
def test_halo_steps_and_rate_are_validated(change: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(change))):
        replace(SMOKE, **change)


def test_a_detector_trained_at_its_halo_is_exported_beside_the_gate(tmp_path, capsys) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    shipped, _ = load_detector('neulens_detector')
    gate, gate_meta = load_gate('neulens_cgg')
    argv = ['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
            '--gate', 'neulens_cgg', '--halo', '2', '--export-dir', str(export)]
    assert main([*argv, '--stages', 'halo,calibrate,export']) == 0
    assert f"tiles trained at the '2' halo for {SMOKE.halo_steps} steps" in \
        capsys.readouterr().out
    history = json.loads((work / 'halo_history.json').read_text())
    assert [r['step'] for r in history] == list(range(1, SMOKE.halo_steps + 1))
    assert all(r['tiled'] is not None and r['mixed'] is not None for r in history)
    # the detector it trained ships with the gate: its weights moved, its halo is recorded
    assert sorted(p.name for p in export.iterdir()) == [
        'neulens_cgg.json', 'neulens_cgg.pt', 'neulens_detector.json', 'neulens_detector.pt']
    trained, meta = load_detector(export / 'neulens_detector.pt')
    assert not _state_equal(trained, shipped)
    assert meta['halo'] == '2' and '--stages halo,calibrate,export' in meta['training_command']
    # the gate as it was, calibrated again on the tiles the trained detector runs
    exported_gate, exported_meta = load_gate(export / 'neulens_cgg.pt')
    assert _state_equal(exported_gate, gate)
    assert exported_meta['calibration']['halo'] == '2' != gate_meta['calibration'].get('halo')
    assert (work / 'plots' / 'training.png').is_file()
    # a later run in the same folder starts from the detector the stage trained
    again = tmp_path / 'again'
    assert main(['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
                 '--gate', str(export / 'neulens_cgg.pt'), '--halo', '2', '--stages', 'export',
                 '--export-dir', str(again)]) == 0
    assert _state_equal(load_detector(again / 'neulens_detector.pt')[0], trained)


def test_the_halo_stage_at_the_paper_halo_trains_nothing(tmp_path, capsys) -> None:
    export = tmp_path / 'export'
    assert main(['--smoke', '--quiet', '--work', str(tmp_path / 'work'), '--detector',
                 'neulens_detector', '--gate', 'neulens_cgg', '--stages', 'halo,export',
                 '--export-dir', str(export)]) == 0
    assert "nothing to train (the 'paper' halo" in capsys.readouterr().out
    assert sorted(p.name for p in export.iterdir()) == ['neulens_cgg.json', 'neulens_cgg.pt']
