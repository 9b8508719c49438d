"""The shipped Grafana dashboard queries only metrics the runtime exports."""

from __future__ import annotations

import json
import re

from appliance.config import load_profile
from appliance.runtime.outputs.metrics import Metrics
from appliance.runtime.state import RuntimeState
from tests.conftest import PROFILES, REPO


def exported_names() -> set[str]:
    loaded = load_profile(PROFILES / "x86.yaml")
    metrics = Metrics(loaded, RuntimeState(loaded))
    names = set()
    for family in metrics.registry.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
        names.update(f"{family.name}_{suffix}" for suffix in ("total", "bucket", "count", "sum"))
    return names


def test_every_dashboard_query_uses_exported_metrics() -> None:
    dashboard = json.loads((REPO / "docs" / "grafana" / "appliance-dashboard.json").read_text())
    exported = exported_names()
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for query in queries for name in re.findall(r"\bappliance_[a-z_]+", query)}
    assert used, "the dashboard queries nothing"
    assert used <= exported, used - exported
