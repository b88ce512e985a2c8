"""neulens-eval difficulty: data requirements on held-out frames, detector preset checks."""

import json

import pytest

from neulens_ros.tools.eval_difficulty import main, size_ranges


def test_data_properties_are_written_with_their_requirements(tmp_path, capsys) -> None:
    code = main(['--preset', 'hard', '--frames', '4', '--out', str(tmp_path)])
    result = json.loads((tmp_path / 'difficulty.json').read_text())
    rows = {row['key']: row for row in result['requirements']}
    assert rows['classes']['value'] == 12 and rows['classes']['met']
    assert code == (0 if all(r['met'] for r in rows.values()) else 1)
    out = capsys.readouterr().out
    assert 'empty_tile_share' in out and 'pass --detector' in out


def test_a_detector_of_another_preset_is_refused(tmp_path, capsys) -> None:
    code = main(['--preset', 'hard', '--frames', '2', '--detector', 'neulens_detector',
                 '--out', str(tmp_path)])
    assert code == 2
    assert "trained on the 'easy' preset" in capsys.readouterr().err


def test_too_few_frames() -> None:
    with pytest.raises(SystemExit):
        main(['--frames', '1'])


def test_detector_requirements_come_from_its_uniform_levels(tmp_path, capsys) -> None:
    assert main(['--preset', 'easy', '--frames', '3', '--detector', 'neulens_detector',
                 '--out', str(tmp_path)]) == 1  # the easy preset misses the data requirements
    values = json.loads((tmp_path / 'difficulty.json').read_text())['values']
    assert 0.0 < values['map50_level3'] <= values['map50_level0'] <= 1.0
    assert values['level3_loss_points'] == pytest.approx(
        100 * (values['map50_level0'] - values['map50_level3']))
    by_size = values['map50_by_object_side_px']
    assert set(by_size) == {'level0', 'level3'}
    assert list(by_size['level0']) == size_ranges() == ['<32', '32-64', '64-128', '>=128']
    scored = [v for v in by_size['level0'].values() if v is not None]  # None: no object
    assert scored and all(0.0 <= v <= 1.0 for v in scored)
    assert 'level0 mAP@0.5 by object side at 640x480: <32 px' in capsys.readouterr().out
