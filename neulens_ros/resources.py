"""Where installed ROS package files live, with or without a sourced ROS environment.

On a full ROS 2 install the ament index (AMENT_PREFIX_PATH) is authoritative. In a pip-only
venv nothing needs sourcing: packages installed into the venv are found under sys.prefix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from neulens_ros.errors import DataError


def ament_prefixes() -> list[Path]:
    """AMENT_PREFIX_PATH entries, plus this interpreter's prefix (the venv) when it holds an
    ament index that is not listed."""
    prefixes = [Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    venv = Path(sys.prefix)
    if (venv / 'share' / 'ament_index').is_dir() and venv not in prefixes:
        prefixes.append(venv)
    return prefixes


def package_share(package: str) -> Path:
    """share/<package> of the first prefix whose ament index registers `package`."""
    for prefix in ament_prefixes():
        marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / package
        if marker.is_file():
            return prefix / 'share' / package
    raise DataError(f'ROS package {package!r} is not installed in any of '
                    f'{[str(p) for p in ament_prefixes()] or "(no AMENT_PREFIX_PATH)"}; run '
                    'scripts/setup.sh (pip-only) or source your ROS 2 workspace')


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child process (a node) with the venv's ament prefix exported."""
    env = dict(os.environ)
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(str(p) for p in ament_prefixes())
    env.update(extra or {})
    return env
