"""Signed config and model updates: bundles, their verification, the A/B slots and the applier."""
