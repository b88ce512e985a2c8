"""The command line each tool records beside its results."""

import sys

import pytest

from neulens_ros.tools.command import recorded_command


@pytest.mark.parametrize('argv, expected', [
    (['--frames', '3'], 'neulens-bench slo --frames 3'),
    ([], 'neulens-bench slo'),
    (['--out', 'my runs'], "neulens-bench slo --out 'my runs'"),  # pasted back, one argument
])
def test_the_dispatched_arguments_are_recorded(argv, expected: str) -> None:  # noqa: ANN001
    assert recorded_command('neulens-bench slo', argv) == expected


def test_a_module_run_records_every_argument_after_its_script(monkeypatch) -> None:  # noqa: ANN001
    # python -m neulens_ros.tools.bench_slo --frames 3 --skip-early
    monkeypatch.setattr(sys, 'argv', ['bench_slo.py', '--frames', '3', '--skip-early'])
    assert recorded_command('neulens-bench slo', None) == \
        'neulens-bench slo --frames 3 --skip-early'
