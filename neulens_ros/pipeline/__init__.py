"""ROS-free steps of the pipeline that the thin nodes wrap: the headset's gate step (frame ->
decision + tiles) and the edge's detection step (tiles + decision -> detections)."""
