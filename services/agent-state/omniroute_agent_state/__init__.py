"""agent-state: the authority on agents: profile, presence, capacity and offers.

- `roster`: the rules, plain synchronous Python over the protobuf `Agent`
  records; time is an argument; every change returns the events to publish.
- `servicer`: the gRPC adapter (authenticate, validate, call the roster,
  publish, answer) and the timer that supplies the roster with the time.
- `auth`: bearer tokens and what the router and agent desktops may do.
- `journal`: publishing changes to Kafka and rebuilding the roster from it.
- `metrics`, `settings`, `app` (wiring), `__main__` (entry point),
  `healthcheck` (the container's probe).
"""
