"""agent-state: the authority on agents: profile, presence, capacity and offers.

- `roster`: the rules, plain synchronous Python over the protobuf `Agent`
  records; time is an argument; every change returns the events to publish.
- `servicer`: the gRPC adapter (validate, call the roster, publish, answer).
- `journal`: publishing changes to Kafka and rebuilding the roster from it.
- `metrics`, `settings`, `app` (wiring), `__main__` (entry point).
"""
