"""The router: queues inquiries per workspace and offers each to the best agent.

- `config`: routing configuration (queues, service levels, escalation ladders).
- `model`, `routing`: the routing core, plain synchronous Python: no Kafka,
  no gRPC, no clock (time is an argument).
- `app`: the Faust app, a thin adapter between Kafka topics and the core.
- `reservations`: the agent-state gRPC client that reserves agents.
- `metrics`: Prometheus metrics.
"""
