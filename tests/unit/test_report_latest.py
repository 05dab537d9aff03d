"""reports/latest, moved by two sessions finishing at the same moment."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

WRITER = """
import sys
from pathlib import Path
from harness.report import json_report
from tests.unit.test_report_data import run_of, verdict_only
reports, tag = Path(sys.argv[1]), sys.argv[2]
for n in range(int(sys.argv[3])):
    run_id = f"2027011{tag}T080000-{n:06x}"
    json_report.write(reports / run_id, run_of(run_id), [verdict_only("s")])
print("done", flush=True)
"""


def test_two_concurrent_writers_of_latest_both_finish_and_latest_is_a_complete_run(tmp_path):
    """Catches reports/latest swapped through one fixed temporary name: two sessions finishing
    together remove or rename each other's link and one dies (FileExistsError or
    FileNotFoundError), or latest points nowhere."""
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), tag, "300"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("1", "2")]
    results = [w.communicate(timeout=120) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [err[-600:] for _, err in results]
    assert all(out == "done\n" for out, _ in results)
    latest = tmp_path / "latest"
    document = json.loads((latest / "report.json").read_text())
    assert latest.is_symlink() and document["run"]["run_id"] == latest.resolve().name
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".latest")]  # no link left behind
