"""Omniroute's shared package: what more than one service needs.

- `omniroute.v1`: the generated protobuf/gRPC contracts (from proto/).
- `settings`: the Kafka and logging settings every service reads.
- `kafka`: topic creation and the acknowledged event producer.
- `codec`: protobuf (de)serialisation with errors that say what is wrong.
- `logs`, `metrics`: structured logging and the Prometheus endpoint.
- `embedded`: the embedded Kafka-compatible broker for `make run` and tests.
"""
