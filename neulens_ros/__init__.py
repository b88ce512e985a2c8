"""neulens_ros: NeuLens tile-level dynamic CNN acceleration for ROS 2 perception pipelines.

The sub-packages ``supernet``, ``gate``, ``control``, ``lifting``, ``data``, ``runtime`` and
``bridge`` form the ROS-free core: they never import rclpy. Only ``neulens_ros.nodes`` does.
"""

__version__ = '0.1.0'
