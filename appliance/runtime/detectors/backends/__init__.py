"""Detector backends, one module each. A module registers its implementation with
`register(Backend(...))`: its facts for profiles (appliance.config.backends: name, extra, model
files, settings), its factory, and whether it owns an accelerator."""
