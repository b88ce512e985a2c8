"""neulens-train --gate: calibrating (and exporting) a shipped gate again, without rendering
the training or validation scenes it does not need, and leaving the detector as it is."""

import json

import pytest
import torch

from neulens_ros.control.accuracy import AccuracyTable
from neulens_ros.models.zoo import load_detector, load_gate
from neulens_ros.tools.train import AFTER_GATE, LATER, main, resolve_stages
from neulens_ros.train.plan import CALIBRATION_SEED, SMOKE


def test_a_gate_checkpoint_is_calibrated_again_and_exported_alone(tmp_path, capsys) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    shipped, shipped_meta = load_gate('neulens_cgg')
    assert main(['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
                 '--gate', 'neulens_cgg', '--stages', 'calibrate,eval,export',
                 '--export-dir', str(export)]) == 0
    assert 'gate from neulens_cgg (paper labels)' in capsys.readouterr().out
    # the gate alone, under its own name, and the accuracy table of its new operating point:
    # the detector checkpoint is not written again
    assert sorted(path.name for path in export.iterdir()) == [
        'accuracy.json', 'neulens_cgg.json', 'neulens_cgg.pt']
    table = AccuracyTable.load(export / 'accuracy.json')
    assert table == AccuracyTable.from_evaluation(json.loads((work / 'eval.json').read_text()))
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
    # the training scenes were not rendered: the calibration's and the validation's alone
    assert len(list((work / 'cache').iterdir())) == 2


def test_a_gate_exported_without_calibrating_keeps_its_calibration(tmp_path) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    _, shipped_meta = load_gate('neulens_cgg_hard')
    work.mkdir()
    (work / 'calibration.json').write_text(json.dumps({'caution': 3.0}))  # another run's
    assert main(['--smoke', '--quiet', '--work', str(work), '--detector',
                 'neulens_detector_hard', '--gate', 'neulens_cgg_hard', '--stages', 'export',
                 '--export-dir', str(export)]) == 0
    # the gate alone: nothing was evaluated, so the accuracy table is left as it is
    assert sorted(path.name for path in export.iterdir()) == ['neulens_cgg_hard.json',
                                                              'neulens_cgg_hard.pt']
    _, meta = load_gate(export / 'neulens_cgg_hard.pt')
    # the checkpoint's calibration, without the weights it records (not this run's to vouch for)
    assert meta['calibration'] == {k: v for k, v in shipped_meta['calibration'].items()
                                   if k not in ('gate_digest', 'detector_digest')}
    assert 'gate_digest' in shipped_meta['calibration']
    assert (meta['caution'], meta['kind_rule']) == (shipped_meta['caution'],
                                                     shipped_meta['kind_rule'])
    assert not (work / 'cache').exists()


def test_a_gate_checkpoint_replaces_the_gate_stage(tmp_path, capsys) -> None:
    assert resolve_stages(None, True, True) == list(AFTER_GATE)
    assert main(['--smoke', '--work', str(tmp_path), '--detector', 'neulens_detector',
                 '--gate', 'neulens_cgg', '--stages', 'gate,calibrate']) == 2
    assert 'drop "gate" from --stages' in capsys.readouterr().err
    assert main(['--smoke', '--work', str(tmp_path), '--gate', 'neulens_cgg',
                 '--gate-labels', 'kinds', '--stages', 'calibrate']) == 2
    assert '--gate brings its own labels' in capsys.readouterr().err
    assert main(['--smoke', '--work', str(tmp_path), '--detector', 'neulens_detector',
                 '--gate', 'no_such_gate', '--stages', 'calibrate']) == 2
    assert 'no_such_gate' in capsys.readouterr().err


def test_a_gate_of_another_preset_is_refused(tmp_path, capsys) -> None:
    assert main(['--smoke', '--work', str(tmp_path), '--detector', 'neulens_detector',
                 '--gate', 'neulens_cgg_hard', '--stages', 'calibrate']) == 2
    assert "a gate of the 'hard' preset, this run is on 'easy'" in capsys.readouterr().err


def test_later_stages_without_a_detector_are_refused(tmp_path, capsys) -> None:
    assert main(['--smoke', '--work', str(tmp_path), '--gate', 'neulens_cgg_hard',
                 '--stages', 'calibrate,export']) == 2
    assert 'the calibrate, export stage(s) need a trained detector: give --detector' in \
        capsys.readouterr().err
    assert not tmp_path.joinpath('cache').exists() and not any(tmp_path.iterdir())


def test_a_later_export_keeps_the_calibration_an_earlier_run_made_for_the_gate(tmp_path,
                                                                            capsys) -> None:
    from neulens_ros.models.registry import weights_digest
    work, export = tmp_path / 'work', tmp_path / 'export'
    shipped, shipped_meta = load_gate('neulens_cgg')
    argv = ['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
            '--gate', 'neulens_cgg', '--export-dir', str(export)]
    assert main([*argv, '--stages', 'calibrate']) == 0
    calibration = json.loads((work / 'calibration.json').read_text())
    assert calibration['gate_digest'] == weights_digest(shipped)
    assert calibration['detector_digest'] == weights_digest(load_detector('neulens_detector')[0])
    assert calibration['sweep'] != shipped_meta['calibration']['sweep']  # the smoke scenes'
    # the export of a second run in the same folder ships that calibration, not the
    # checkpoint's, and leaves it in place
    assert main([*argv, '--stages', 'export']) == 0
    assert 'keeping the calibration' in capsys.readouterr().out
    _, meta = load_gate(export / 'neulens_cgg.pt')
    assert meta['calibration'] == calibration
    assert meta['caution'] == calibration['caution']
    assert json.loads((work / 'calibration.json').read_text()) == calibration


def test_weights_digest_follows_the_weights_not_the_file() -> None:
    from neulens_ros.models.registry import weights_digest
    a, _ = load_gate('neulens_cgg')
    b, _ = load_gate('neulens_cgg')
    assert weights_digest(a) == weights_digest(b)
    with torch.no_grad():
        next(iter(b.parameters())).view(-1)[0] += 1e-3
    assert weights_digest(a) != weights_digest(b)


@pytest.mark.parametrize('earlier', [
    {'caution': 3.0, 'gate_digest': 'another gate', 'detector_digest': 'another detector'},
    'not json {',  # a truncated file
    {'caution': 3.0}])  # another run's, that records no weights
def test_a_calibration_made_for_other_weights_gives_way_to_the_checkpoints(tmp_path,
                                                                          earlier) -> None:
    work, export = tmp_path / 'work', tmp_path / 'export'
    _, shipped_meta = load_gate('neulens_cgg')
    work.mkdir()
    (work / 'calibration.json').write_text(earlier if isinstance(earlier, str)
                                           else json.dumps(earlier))
    assert main(['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector',
                 '--gate', 'neulens_cgg', '--stages', 'export',
                 '--export-dir', str(export)]) == 0
    _, meta = load_gate(export / 'neulens_cgg.pt')
    assert meta['caution'] == shipped_meta['caution']
    assert meta['calibration']['sweep'] == shipped_meta['calibration']['sweep']
    assert not {'gate_digest', 'detector_digest'} & set(meta['calibration'])


def test_the_stages_refuse_a_calibration_made_for_other_gate_weights(tmp_path, capsys) -> None:
    work = tmp_path / 'work'
    argv = ['--smoke', '--quiet', '--work', str(work), '--detector', 'neulens_detector']
    assert main([*argv, '--gate', 'neulens_cgg', '--stages', 'calibrate']) == 0
    # another gate in the folder (as a later gate stage leaves one), the calibration kept
    gate, _ = load_gate('neulens_cgg')
    with torch.no_grad():
        next(iter(gate.parameters())).view(-1)[0] += 1e-3
    torch.save(gate.state_dict(), work / 'gate.pt')
    assert main([*argv, '--stages', 'export', '--export-dir', str(tmp_path / 'x')]) == 2
    assert 'made for other gate weights: run the calibrate stage again' in \
        capsys.readouterr().err
