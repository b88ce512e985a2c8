"""neulens_ros.tools."""
