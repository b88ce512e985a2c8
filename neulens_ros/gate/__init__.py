"""neulens_ros.gate."""
