"""neulens_ros.bag: rosbag2 (MCAP / sqlite3) writing and reading without ROS tools (rosbags)."""
