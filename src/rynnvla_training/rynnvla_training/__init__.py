"""Rosbag to LeRobot v3 converter, dataset tools, trainers for the ActionVAE and all three RynnVLA-001 stages, closed-loop evaluation."""
