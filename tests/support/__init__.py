"""Helpers for the integration tests: the broker, service processes, topics."""
