"""Build a `launch` LaunchDescription from config/topology.yaml (full ROS 2 installs only).

launch/mr_pipeline.launch.py, headset.launch.py and edge.launch.py call this with the roles
they start; `neulens-pipeline` reads the same topology for pip-only installs. `launch` and
`launch_ros` are imported here, inside the function, so the rest of the package never needs
them.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from neulens_ros.topology import (ROLES, NodeEntry, config_dir, fastdds_profile_variable,
                                  launch_args, load_topology)

# Restarts of a respawnable node over one launch (launch counts retries in total, where
# neulens-pipeline --respawn bounds them per minute).
RESPAWN_MAX_RETRIES = 10


def respawn_arguments(entry: NodeEntry) -> dict[str, Any]:
    """launch's respawn arguments of a node (none for a node that is not restarted)."""
    if not entry.respawn:
        return {}
    return {'respawn': True, 'respawn_delay': float(entry.respawn_delay_s),
            'respawn_max_retries': RESPAWN_MAX_RETRIES}


def pipeline_launch_description(roles: Sequence[str] = ROLES) -> Any:
    """LaunchDescription starting every topology node whose role is in `roles`."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    nodes = load_topology()
    actions: list[Any] = [DeclareLaunchArgument(name, default_value=default, description=doc)
                          for name, (default, doc) in launch_args(nodes, roles).items()]
    config = config_dir()
    # The shipped Fast DDS profile (shared memory with a large segment) unless the user
    # chose one; SetEnvironmentVariable only affects the processes this launch starts.
    profile_variable = fastdds_profile_variable()
    if profile_variable not in os.environ:
        actions.append(SetEnvironmentVariable(profile_variable,
                                              str(config / 'fastdds_local.xml')))
    for entry in nodes:
        if entry.role not in roles:
            continue
        params: list[Any] = [str(config / entry.config)]
        if entry.arg_params:
            params.append({param: LaunchConfiguration(arg)
                           for param, arg in entry.arg_params.items()})
        actions.append(Node(
            package='neulens_ros', executable=entry.executable, name=entry.name,
            namespace=LaunchConfiguration('namespace'), parameters=params, output='screen',
            condition=IfCondition(LaunchConfiguration(entry.when)) if entry.when else None,
            **respawn_arguments(entry)))
    return LaunchDescription(actions)
