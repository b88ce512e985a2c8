"""The pipeline's node graph, read from config/topology.yaml (ROS-free).

Both launch/*.launch.py (full ROS 2 with `launch`) and `neulens-pipeline` (pip-only ROS 2)
turn the same entries into processes, so the two ways of starting the pipeline cannot drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from neulens_ros.errors import ConfigError
from neulens_ros.resources import package_share
from neulens_ros.runtime import BACKENDS

ROLES = ('headset', 'edge')

# Launch arguments, with their defaults (strings, as `launch` has them). A launch file declares
# those that act on its nodes (launch_args).
LAUNCH_ARGS: dict[str, tuple[str, str]] = {
    'namespace': ('', 'ROS namespace of every node'),
    'use_sample_data': ('true', 'start the source node on generated/sample data; false = use '
                        'live camera topics'),
    'record_bag': ('false', 'start the recorder node'),
    'bag_dir': ('bags', 'folder that receives recorded bags'),
    'backend': ('auto', 'supernet backend: ' + ', '.join(BACKENDS) + ' (auto: TensorRT where '
                'present, else torch)'),
}
EVERY_NODE_ARGS = ('namespace',)  # applied to every node by the launchers


@dataclass(frozen=True)
class NodeEntry:
    """One node of the graph."""

    name: str  # node name
    executable: str  # console script; module neulens_ros.nodes.<executable>
    role: str  # 'headset' or 'edge'
    config: str  # parameter file name in config/
    when: str = ''  # launch argument that must be true ('' = always)
    arg_params: Mapping[str, str] = field(default_factory=dict)  # parameter <- launch arg
    respawn: bool = False  # restarted when its process dies (launch's respawn=True)
    respawn_delay_s: float = 0.0  # s between the death and the restart

    def __post_init__(self) -> None:
        if not isinstance(self.respawn, bool):
            raise ConfigError(f'topology: node {self.name}: respawn must be true or false, got '
                              f'{self.respawn!r}')
        if not isinstance(self.respawn_delay_s, (int, float)) or self.respawn_delay_s < 0:
            raise ConfigError(f'topology: node {self.name}: respawn_delay_s must be a number '
                              f'>= 0, got {self.respawn_delay_s!r}')
        if not self.name.isidentifier() or not self.executable.isidentifier():
            raise ConfigError(f'topology: node name and executable must be identifiers, got '
                              f'{self.name!r} / {self.executable!r}')
        unknown = ({self.when, *self.arg_params.values()} - {''}) - set(LAUNCH_ARGS)
        if unknown:
            raise ConfigError(f'topology: node {self.name} reads unknown launch arguments '
                              f'{sorted(unknown)} (known: {sorted(LAUNCH_ARGS)})')
        if self.role not in ROLES:
            raise ConfigError(f'topology: node {self.name} has role {self.role!r}, expected '
                              f'one of {ROLES}')

    @property
    def module(self) -> str:
        return f'neulens_ros.nodes.{self.executable}'

    def enabled(self, args: Mapping[str, str | bool]) -> bool:
        """Whether the node starts for these launch arguments."""
        if not self.when:
            return True
        value = args.get(self.when, False)
        return value is True or str(value).lower() in ('true', '1', 'yes')


def launch_args(nodes: Sequence[NodeEntry], roles: Sequence[str] = ROLES
                ) -> dict[str, tuple[str, str]]:
    """The launch arguments that act on the nodes of `roles`: those applied to every node, and
    those a node's `when` or `arg_params` reads."""
    used = set(EVERY_NODE_ARGS) | {arg for node in nodes if node.role in roles
                                   for arg in (node.when, *node.arg_params.values()) if arg}
    return {name: value for name, value in LAUNCH_ARGS.items() if name in used}


def config_dir() -> Path:
    """The config/ folder: the installed share/neulens_ros/config, else the source tree's."""
    source_tree = Path(__file__).resolve().parent.parent / 'config'
    if (source_tree / 'topology.yaml').is_file():
        return source_tree
    return package_share('neulens_ros') / 'config'


# ROS 2 distributions that ship Fast DDS 2, which reads its XML profile from the old variable
FAST_DDS_2_DISTROS = ('humble', 'iron', 'jazzy')


def fastdds_profile_variable(distro: str | None = None) -> str:
    """The environment variable Fast DDS reads its XML profile from: FASTDDS_DEFAULT_PROFILES_FILE
    (Fast DDS 3: Kilted, Rolling and the Kilted wheels, where ROS_DISTRO is unset) or
    FASTRTPS_DEFAULT_PROFILES_FILE (Fast DDS 2: Humble, Iron, Jazzy). `distro` defaults to
    $ROS_DISTRO, which a sourced ROS 2 install sets."""
    distro = os.environ.get('ROS_DISTRO', '') if distro is None else distro
    return ('FASTRTPS_DEFAULT_PROFILES_FILE' if distro.lower() in FAST_DDS_2_DISTROS
            else 'FASTDDS_DEFAULT_PROFILES_FILE')


def load_topology(path: Path | None = None) -> list[NodeEntry]:
    """Parse topology.yaml into NodeEntry objects (ConfigError names the bad entry)."""
    path = path or config_dir() / 'topology.yaml'
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f'cannot read the pipeline topology {path}: {exc}') from exc
    entries = data.get('nodes') if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{path}: expected a non-empty list under "nodes"')
    nodes = []
    for i, entry in enumerate(entries):
        try:
            nodes.append(NodeEntry(**entry))
        except TypeError as exc:
            raise ConfigError(f'{path}: node #{i}: {exc}') from exc
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ConfigError(f'{path}: node names must be unique, got {names}')
    return nodes
