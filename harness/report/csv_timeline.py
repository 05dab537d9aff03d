"""timeline.csv: one row per health-probe sample of every scenario, for spreadsheets and plots
made elsewhere. Times are UTC (ISO 8601) plus seconds since the scenario's probe started, and
each row names the faults active at that moment, so a filter on one column finds the outage."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from harness import recovery
from harness.report.json_report import RAW, iso_stamps

COLUMNS = ("run", "scenario", "ts", "t_rel", "score", "level", "breaker", "disk_used_percent", "fault_active", "error")


def rows(run_id: str, scenario: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The scenario's samples as CSV rows, cells in COLUMNS order (none when the scenario had
    no probe)."""
    samples = scenario.get(RAW, {}).get("samples", [])
    t0 = scenario.get("window", {}).get("started") or (samples[0]["ts"] if samples else 0.0)
    active = recovery.active_faults_each([s["ts"] for s in samples], scenario.get("faults", []))
    name = scenario["name"]
    stamps = iso_stamps([s["ts"] for s in samples])
    return [(run_id, name, when, f"{s['ts'] - t0:.3f}", s["score"], s["level"], s["breaker"],
             s["disk_used_percent"], "+".join(names), s["error"]) for s, names, when in zip(samples, active, stamps)]


def write(run_dir: Path, run: dict[str, Any], scenarios: list[dict[str, Any]]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "timeline.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for scenario in scenarios:
            writer.writerows(rows(run["run_id"], scenario))
    return path
