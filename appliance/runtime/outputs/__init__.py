"""Outputs: subscribers of the event bus (Prometheus metrics, the local event log, the console)."""
