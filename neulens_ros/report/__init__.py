"""neulens_ros.report: latency analysis of recorded bags (ROS-free)."""
