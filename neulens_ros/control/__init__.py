"""neulens_ros.control."""
