"""ROS 2 lifecycle policy node: a thin layer over `rynnvla_policy.core.PolicyRunner`.

Pure modules (no rclpy, plain-pytest testable): `params` (validated parameters), `contract`
(checkpoint vs robot), `inputs` (latest-sample buffers, age checks), `instruction` (validation),
`chunks` (time-stamped plans, overlap policies, trajectory data), `safety` (limits),
`controller` (the control state machine), `stats` (latency windows).
ROS modules: `messages` (numpy <-> message builders), `worker` (inference thread),
`policy_node` (the LifecycleNode), `main` (console entry point `policy_node`).
"""
