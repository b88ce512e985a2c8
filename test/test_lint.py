"""The code base passes the project's lint rules (ruff.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = shutil.which('ruff') or str(Path(sys.executable).parent / 'ruff')
    if not Path(ruff).exists():
        pytest.fail('ruff is not installed: run scripts/setup.sh (it is in requirements.txt)')
    result = subprocess.run([ruff, 'check', '--no-cache', '.'], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
