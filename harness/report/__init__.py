"""Run output under reports/<run-id>/: what a person reads the morning after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import run_ids
from harness.report import csv_timeline, html, incident, json_report, schema

# Written before report.json, whose writer moves reports/latest: latest is complete when it moves.
WRITERS = (csv_timeline.write, html.write, incident.write, json_report.write)


def run_directory(reports: Path, run_id: str) -> Path:
    """reports/<run id>/: a run id that is not one (``../x``) never becomes a directory."""
    return reports / run_ids.valid(run_id)


def write_all(run_dir: Path, run: dict[str, Any], scenarios: list[dict[str, Any]]) -> Path:
    """Every report of a run (pytest's scenarios or a game day), latest moved last; the run's
    id is checked first, as it is wherever a run id meets a path, and the whole document against
    the schema (ReportSchemaError), so a run that does not fit leaves no file at all. The writers
    get the entries as the schema keeps them."""
    document, entries = schema.report(run, scenarios)
    run_ids.valid(document["run"]["run_id"])
    for writer in WRITERS:
        writer(run_dir, document["run"], entries)
    return run_dir
