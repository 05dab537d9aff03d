"""report.json (the whole run) and one <scenario>.json per scenario, in a versioned schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def write(run_dir: Path, run: dict[str, Any], scenarios: list[dict[str, Any]]) -> Path:
    """Writes the run's JSON files and points <reports>/latest at the run directory."""
    run_dir.mkdir(parents=True, exist_ok=True)
    document = {"schema_version": SCHEMA_VERSION, "run": run, "scenarios": scenarios}
    path = run_dir / "report.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    for scenario in scenarios:
        (run_dir / f"{scenario['name']}.json").write_text(
            json.dumps({"schema_version": SCHEMA_VERSION, "run_id": run["run_id"], **scenario},
                       indent=2, default=str) + "\n", encoding="utf-8")
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, latest)
    return path
