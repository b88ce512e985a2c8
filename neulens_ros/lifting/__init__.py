"""neulens_ros.lifting."""
