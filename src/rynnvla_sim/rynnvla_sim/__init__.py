"""MuJoCo simulated SO-100-style arm: scenes, tasks, scripted expert, ROS 2 sim node, demo recorder and human-hand video generator."""
