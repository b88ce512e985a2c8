"""neulens_ros.nodes."""
