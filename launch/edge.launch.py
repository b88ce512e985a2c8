"""The edge half: the supernet node.

    ros2 launch neulens_ros edge.launch.py [namespace:=NS]
        [backend:=auto|torch|torchscript|onnxruntime|tensorrt]

The graph comes from config/topology.yaml, which `neulens-pipeline` (pip-only ROS 2) reads too;
nodes it marks `respawn: true` are restarted when their process dies (respawn=True).
"""

from neulens_ros.launch_graph import pipeline_launch_description


def generate_launch_description():  # noqa: D103 - the launch entry point
    return pipeline_launch_description(roles=('edge',))
