"""neulens_ros.bridge."""
