"""neulens-train --smoke: every stage end to end, resumable, exported checkpoints load."""

import json

import pytest
import torch

from neulens_ros.data.scenes import class_names
from neulens_ros.models.names import CHECKPOINTS, DEFAULT_PRESET
from neulens_ros.models.zoo import load_detector, load_gate
from neulens_ros.tools.eval_gate import main as eval_gate
from neulens_ros.tools.train import LATER, STAGES, main, resolve_stages
from neulens_ros.train.plan import CALIBRATION_SEED, CALIBRATION_WALK_SEED, GATE_CONTEXT, SMOKE

pytestmark = pytest.mark.slow


def test_smoke_training_runs_every_stage(tmp_path, run_installed) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    # the installed command, from outside the checkout
    run = run_installed('neulens-train', '--smoke', '--quiet', '--work', str(work),
                        '--export-dir', str(export), timeout=500)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    history = json.loads((work / 'supernet_history.json').read_text())
    assert len(history) == 4 and all(r['full'] > 0 for r in history)
    results = json.loads((work / 'eval.json').read_text())
    assert {'untiled', 'tiled_l0_paper', 'tiled_l0_exact', 'cgg', 'uniform_3'} <= set(
        results['variants'])
    assert results['variants']['uniform_3']['macs'] < results['variants']['uniform_0']['macs']
    assert (work / 'plots' / 'map_vs_macs.png').is_file()
    # the gate calibrated on scenes and walks of their own, rendered as the held-out ones
    calibration = json.loads((work / 'calibration.json').read_text())
    assert calibration['images'] == {
        'scenes': {'first_seed': CALIBRATION_SEED, 'count': SMOKE.calibration_scenes,
                   'render': list(SMOKE.val_render)},
        'walks': {'first_seed': CALIBRATION_WALK_SEED, 'count': SMOKE.calibration_walks,
                  'render': list(SMOKE.val_render), 'frames': SMOKE.calibration_walk_frames}}
    assert set(calibration['references']) == {'scenes', 'walks'}
    assert all(set(s['parts']) == {'scenes', 'walks'} and
               s['loss_points'] == max(p['loss_points'] for p in s['parts'].values())
               for s in calibration['sweep'])
    detector_name, gate_name, _ = CHECKPOINTS[DEFAULT_PRESET]  # the default preset's names
    model, meta = load_detector(export / f'{detector_name}.pt')
    gate, gate_meta = load_gate(export / f'{gate_name}.pt')
    assert meta['training_command'].startswith('neulens-train') and gate_meta['kind'] == 'gate'
    assert meta['architecture']['preset'] == DEFAULT_PRESET
    # resuming does no training again: the checkpoint is at its last step
    assert main(['--smoke', '--quiet', '--work', str(work), '--stages', 'supernet',
                 '--export-dir', str(export)]) == 0
    assert len(json.loads((work / 'supernet_history.json').read_text())) == 4


def test_unknown_stage_is_rejected(tmp_path, capsys) -> None:
    assert main(['--smoke', '--work', str(tmp_path), '--stages', 'data,polish']) == 2
    assert 'polish' in capsys.readouterr().err


def test_later_stages_start_from_a_detector_checkpoint(tmp_path, capsys) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    shipped, shipped_meta = load_detector('neulens_detector')
    assert main(['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
                 '--stages', 'labels,gate,export', '--export-dir', str(export)]) == 0
    assert not (work / 'supernet_history.json').exists()  # no supernet step ran
    summary = json.loads((work / 'gate_summary.json').read_text())
    assert summary['tiles_fit'] + summary['tiles_held_out'] == 6 * (4 + 9 + 16)
    model, meta = load_detector(export / 'neulens_detector.pt')
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  shipped.state_dict().values(), strict=True))
    _, gate_meta = load_gate(export / 'neulens_cgg.pt')
    assert gate_meta['training_command'].startswith('neulens-train --smoke')
    original = shipped_meta['training_command'].split(LATER)[0]
    assert meta['training_command'] == original + LATER + gate_meta['training_command']
    # neulens-eval gate: the gate stage's split, so its last point fits the same tiles (with
    # the detector that labelled them: another detector's halo is refused)
    out = tmp_path / 'eval_gate'
    # the default detector (hard, 2 px halo) did not label them (easy, paper halo)
    assert eval_gate(['--smoke', '--work', str(work), '--out', str(out)]) == 2
    assert "labels tiles run with the 'paper' halo, this run uses '2'" in capsys.readouterr().err
    assert eval_gate(['--smoke', '--work', str(work), '--detector', 'neulens_detector',
                      '--fractions', '0.5,1',
                      '--probe-epochs', '1', '--out', str(out)]) == 0
    result = json.loads((out / 'gate_eval.json').read_text())
    curve = result['curve']
    assert [r['fraction'] for r in curve] == [0.5, 1.0]
    assert curve[0]['tiles'] < curve[1]['tiles'] == summary['tiles_fit']
    assert result['held_out_tiles'] == summary['tiles_held_out']
    assert all(0.0 <= r['held_out_accuracy'] <= 1.0 for r in [*curve, result['probe']])
    assert result['probe']['parameters'] > 40 * result['gate_parameters']
    assert (out / 'gate_learning_curve.png').is_file()



def test_stages_default_to_the_later_ones_with_a_detector() -> None:
    assert resolve_stages(None, False) == list(STAGES)
    assert resolve_stages(None, True) == [s for s in STAGES if s != 'supernet']
    assert resolve_stages('gate, eval', True) == ['gate', 'eval']


def test_detector_checkpoint_excludes_the_supernet_stage(tmp_path, capsys) -> None:
    assert main(['--smoke', '--work', str(tmp_path), '--detector', 'neulens_detector',
                 '--stages', 'supernet,gate']) == 2
    assert 'drop "supernet"' in capsys.readouterr().err


def test_another_preset_exports_its_own_checkpoints(tmp_path) -> None:
    (other,) = set(CHECKPOINTS) - {DEFAULT_PRESET}
    work, export = tmp_path / 'work', tmp_path / 'export'
    assert main(['--smoke', '--quiet', '--preset', other, '--work', str(work),
                 '--export-dir', str(export)]) == 0
    detector, gate, table = CHECKPOINTS[other]
    model, meta = load_detector(export / f'{detector}.pt')
    assert meta['architecture']['preset'] == other
    assert meta['architecture']['classes'] == list(class_names(other))
    assert model.config.num_classes == len(class_names(other))
    assert (export / f'{gate}.pt').is_file() and (export / table).is_file()
    assert not (export / f'{CHECKPOINTS[DEFAULT_PRESET][0]}.pt').exists()


def test_a_detector_of_another_preset_is_refused(tmp_path, capsys) -> None:
    assert main(['--smoke', '--work', str(tmp_path), '--detector', 'neulens_detector',
                 '--preset', 'hard']) == 2
    assert "trained on the 'easy' preset" in capsys.readouterr().err


def test_a_gate_on_other_labels_is_exported_alone(tmp_path) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    assert main(['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
                 '--gate-labels', 'kinds', '--stages', 'gate,calibrate,export',
                 '--export-dir', str(export)]) == 0
    assert sorted(p.name for p in export.iterdir()) == ['neulens_cgg_kinds.json',
                                                         'neulens_cgg_kinds.pt']
    gate, meta = load_gate(export / 'neulens_cgg_kinds.pt')
    assert gate.context == meta['architecture']['context'] == GATE_CONTEXT['kinds']
    assert meta['labels'] == 'kinds' and '--gate-labels kinds' in meta['training_command']
    summary = json.loads((work / 'gate_summary.json').read_text())
    tiles = 4 + 9 + 16
    assert summary['tiles_held_out'] == SMOKE.label_scenes * tiles
    fit = SMOKE.train_scenes - SMOKE.label_scenes - SMOKE.calibration_scenes
    assert summary['tiles_fit'] == 2 * fit * tiles  # each image and its mirror image
    assert not (work / 'labels.npz').exists()  # the paper's labelling pass did not run
