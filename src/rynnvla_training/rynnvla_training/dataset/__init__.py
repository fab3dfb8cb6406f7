"""LeRobotDataset v3.0 reading and inspection (``rynnvla-dataset``)."""
