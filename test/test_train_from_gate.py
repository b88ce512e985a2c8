"""neulens-train --gate: calibrating (and exporting) a shipped gate again, without rendering
the training or validation scenes it does not need."""

import json

import torch

from neulens_ros.models.zoo import load_gate
from neulens_ros.tools.train import LATER, main, resolve_stages
from neulens_ros.train.plan import CALIBRATION_SEED, SMOKE


def test_a_gate_checkpoint_is_calibrated_again_and_exported_unchanged(tmp_path, capsys) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    shipped, shipped_meta = load_gate('neulens_cgg')
    assert main(['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
                 '--gate', 'neulens_cgg', '--stages', 'calibrate,export',
                 '--export-dir', str(export)]) == 0
    assert 'gate from neulens_cgg (paper labels)' in capsys.readouterr().out
    gate, meta = load_gate(export / 'neulens_cgg.pt')
    assert all(torch.equal(a, b) for a, b in zip(gate.state_dict().values(),
                                                  shipped.state_dict().values(), strict=True))
    # the new calibration ships, on the smoke run's calibration scenes (the easy preset: no
    # walks), and the gate keeps its metrics and the command that trained it
    calibration = json.loads((work / 'calibration.json').read_text())
    assert meta['calibration'] == calibration and meta['caution'] == calibration['caution']
    assert calibration['images'] == {'scenes': {
        'first_seed': CALIBRATION_SEED, 'count': SMOKE.calibration_scenes,
        'render': list(SMOKE.val_render)}}
    assert meta['metrics'] == {**shipped_meta['metrics'], 'labels': 'paper'}
    original = shipped_meta['training_command'].split(LATER)[0]
    assert meta['training_command'].startswith(original + LATER + 'neulens-train --smoke')
    # neither the training nor the validation scenes were rendered: the calibration's alone
    assert len(list((work / 'cache').iterdir())) == 1


def test_a_gate_checkpoint_replaces_the_gate_stage(tmp_path, capsys) -> None:
    assert resolve_stages(None, True, True) == ['data', 'labels', 'calibrate', 'eval', 'export']
    assert main(['--smoke', '--work', str(tmp_path), '--detector', 'neulens_detector',
                 '--gate', 'neulens_cgg', '--stages', 'gate,calibrate']) == 2
    assert 'drop "gate" from --stages' in capsys.readouterr().err
    assert main(['--smoke', '--work', str(tmp_path), '--gate', 'neulens_cgg',
                 '--gate-labels', 'kinds', '--stages', 'calibrate']) == 2
    assert '--gate brings its own labels' in capsys.readouterr().err
    assert main(['--smoke', '--work', str(tmp_path), '--gate', 'no_such_gate',
                 '--stages', 'calibrate']) == 2
    assert 'no_such_gate' in capsys.readouterr().err
    assert not (tmp_path / 'cache').exists()
