"""neulens-profile and the round-robin timer it shares with neulens-bench (no timing
assertions: only what the numbers must satisfy whatever the machine's speed)."""

import json

import numpy as np
import pytest

from neulens_ros.control.predictor import Predictor
from neulens_ros.errors import ConfigError
from neulens_ros.models.zoo import predictor_file
from neulens_ros.runtime.timing import round_robin_ms
from neulens_ros.tools.profile import main


def test_round_robin_runs_every_function_once_per_round() -> None:
    calls = []
    result = round_robin_ms({name: (lambda n=name: calls.append(n)) for name in 'abc'},
                            rounds=3, warmup=1)
    assert calls == list('abc') * 4  # one warm-up round, then three timed rounds in turn
    assert set(result) == set('abc') and all(v >= 0 for v in result.values())


@pytest.mark.parametrize('rounds,warmup', [(0, 1), (2, -1)])
def test_round_robin_rejects_bad_counts(rounds: int, warmup: int) -> None:
    with pytest.raises(ConfigError, match='rounds >= 1 and warmup >= 0'):
        round_robin_ms({'a': lambda: None}, rounds, warmup)


# memory error bound per halo: the paper halo's tiles are all one size, so a frame's memory is
# linear in its level histogram by construction; an integer halo's border tiles are smaller
# than the inner ones (k = 3: 6 sizes), so which tiles sit at a level moves it a little
MEMORY_MAPE = {'paper': 0.01, '2': 0.05}


@pytest.mark.parametrize('halo', sorted(MEMORY_MAPE))
@pytest.mark.parametrize('backend', ['torch', 'torchscript'])
def test_profile_writes_a_predictor_fitted_on_real_measurements(tmp_path, backend: str,
                                                                halo: str) -> None:
    assert main(['--samples', '6', '--repeats', '1', '--threads', '1', '--backend', backend,
                 '--halo', halo, '--out', str(tmp_path)]) == 0
    data = json.loads((tmp_path / 'profile.json').read_text())
    fronts = [r for r in data['records'] if r['k']]
    assert {(r['p'], r['k']) for r in fronts} == {(p, k) for p in ('stem', 'layer1', 'layer2')
                                                 for k in (2, 3, 4)}
    for r in fronts:
        assert sum(r['histogram']) == r['k'] ** 2 and r['latency_ms'] > 0
    # memory of the uniform anchors falls with the level (activation bytes, exact)
    for p in ('stem', 'layer1', 'layer2'):
        uniform = {int(np.argmax(r['histogram'])): r['memory_mb'] for r in fronts
                   if r['p'] == p and r['k'] == 3 and max(r['histogram']) == 9}
        falling = [uniform[lv] for lv in range(5)]
        assert np.all(np.diff(falling) < 0)  # strictly falling, skip included
    assert data['held_out']['memory_mape'] < MEMORY_MAPE[halo]
    assert data['info']['threads'] == 1 and data['info']['backend'] == backend
    assert data['info']['halo'] == halo
    # named for the default detector's architecture, as --install would ship it
    predictor = Predictor.load(tmp_path / predictor_file().name)
    assert len(predictor.candidates()) == 9


@pytest.mark.parametrize('argv, message', [
    (['--samples', '4'], '--samples must be at least 5'),
    (['--repeats', '0'], '--repeats at least 1'),
    (['--detector', 'nope'], 'nope.pt not found'),
])
def test_profile_usage_errors_say_what_to_fix(tmp_path, capsys, argv: list[str],
                                              message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, '--out', str(tmp_path)])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing measured, nothing written
