"""RynnVLA-001 policy: pure-Python model core (config, modeling, processor, checkpoints, runner) and the ROS 2 lifecycle policy node."""
