"""Detector backends, one module each. A module registers itself with `register(Backend(...))`:
its key in profiles, the extra that installs its runtime, the model files it loads, whether it
owns an accelerator, and the detector settings it reads. Nothing else names a backend."""
