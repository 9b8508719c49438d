"""What runs on the device: one module per stage (sources, detectors, tracking, analysis,
outputs) and the supervisor that runs one worker per camera."""
