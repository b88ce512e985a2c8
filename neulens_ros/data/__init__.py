"""neulens_ros.data."""
