"""neulens_ros.supernet."""
