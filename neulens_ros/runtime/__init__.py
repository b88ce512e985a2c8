"""neulens_ros.runtime."""
