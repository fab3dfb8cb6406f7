"""The rclpy sim node (``sim_node``): ``SimNode``, its parameters and threads."""
