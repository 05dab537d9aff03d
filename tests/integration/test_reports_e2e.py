"""The reports of a real run: `pytest scenarios/ -k payment_outage --chaos-reports=DIR` leaves
every file a person reads the morning after, each well-formed, and report.html renders in a
headless browser offline (plots included)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report import incident, json_report
from tests.conftest import BIN, run

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SCENARIO = "payment_outage"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reports = tmp_path_factory.mktemp("reports")
    result = run([str(BIN / "pytest"), "scenarios/", "-k", SCENARIO, f"--chaos-reports={reports}",
                  "-p", "no:cacheprovider", "-q"], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return (reports / "latest").resolve()


def test_every_report_file_exists(run_dir: Path):
    expected = {"report.json", f"{SCENARIO}.json", "junit.xml", "timeline.csv", "report.html",
                *(incident.filename(SCENARIO, lang) for lang in incident.LANGUAGES)}
    assert expected <= {p.name for p in run_dir.iterdir()}


def test_json_parses_with_ttd_ttr_and_the_raw_timeline(run_dir: Path):
    document = json.loads((run_dir / "report.json").read_text())
    assert document["schema_version"] == json_report.SCHEMA_VERSION
    (scenario,) = document["scenarios"]
    assert scenario["outcome"] == "passed" and scenario["faults"][0]["fault"] == "http.status"
    assert scenario["ttd_s"] is not None and scenario["ttr_s"] is not None, scenario
    assert scenario["probe"]["samples"] >= 1 and document["run"]["run_id"] == run_dir.name
    own = json.loads((run_dir / f"{SCENARIO}.json").read_text())
    assert len(own["timeline"]["samples"]) == scenario["probe"]["samples"] and own["timeline"]["ops"]
    assert own["run_id"] == run_dir.name


def test_csv_has_a_row_per_sample(run_dir: Path):
    rows = list(csv.DictReader((run_dir / "timeline.csv").open(encoding="utf-8")))
    (scenario,) = json.loads((run_dir / "report.json").read_text())["scenarios"]
    assert len(rows) == scenario["probe"]["samples"] and {row["scenario"] for row in rows} == {SCENARIO}
    # Each row names the fault exactly when its sample lies in the fault's window (start
    # inclusive, heal exclusive). Whether the probe sampled inside that window at all is the
    # machine's timing, so it is not asserted: on a busy machine none did.
    faults = scenario["faults"]
    assert faults and {fault["fault"] for fault in faults} == {"http.status"}  # one at each vendor
    samples = json.loads((run_dir / f"{SCENARIO}.json").read_text())["timeline"]["samples"]
    inside = [any(f["start"] <= sample["ts"] < (f["end"] or float("inf")) for f in faults) for sample in samples]
    assert [row["fault_active"] != "" for row in rows] == inside
    assert {name for row in rows if row["fault_active"] for name in row["fault_active"].split("+")} <= {"http.status"}


def test_html_has_the_plots(run_dir: Path):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and 'class="fault"' in page and "http.status @ payment_gateway" in page


@pytest.mark.parametrize("lang", incident.LANGUAGES)
def test_incident_records_have_all_six_fields(run_dir: Path, lang: str):
    text = (run_dir / incident.filename(SCENARIO, lang)).read_text(encoding="utf-8")
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == [incident.HEADINGS[lang][field] for field in incident.FIELDS]
    sections = text.split("\n## ")[1:]
    assert all(section.count("\n- ") >= 1 for section in sections)


def _chromium() -> str | None:
    """Why headless Chromium is unavailable (None when it is there), installing Debian's package
    first when it is absent and this is root on an apt system (bounded in time)."""
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=900)
    return None if CHROMIUM.exists() else f"{CHROMIUM} is absent and `apt-get install -y chromium` did not provide it"


def test_report_html_renders_in_headless_chromium(run_dir: Path, tmp_path: Path):
    missing = _chromium()
    if missing:
        print(f"skipped: {missing}")
        pytest.skip(missing)
    shot = tmp_path / "shot.png"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}",
               f"--screenshot={shot}", "--window-size=1280,2000", (run_dir / "report.html").as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 30_000, result.stderr[-2000:]
    keep = Path(run_dir) / "screenshot.png"  # next to the report, for a person to look at
    shutil.copy(shot, keep)
