"""Outputs: consumers of the event stream, each on its own thread (base.py): Prometheus metrics,
the local event log; and the anonymizer every image passes before it leaves the device."""
