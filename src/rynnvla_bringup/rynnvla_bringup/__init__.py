"""Launch files, robot profiles, parameters, composed runner and demo for the RynnVLA-001 ROS 2 stack."""
