"""The nightly CI workflow parses, runs on a schedule, runs README's command and keeps its output."""

import re

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "nightly-chaos.yml"


def _workflow() -> dict:
    document = yaml.safe_load(WORKFLOW.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def _readme_chaos_command() -> str:
    """The main-job command README gives (the line that says it runs the chaos scenarios)."""
    (line,) = [line for line in (ROOT / "README.md").read_text().splitlines()
               if re.match(r"^make \S+\s+# runs the chaos scenarios", line)]
    return line.split("#")[0].strip()


def test_it_runs_nightly_on_a_schedule():
    crons = [entry["cron"] for entry in _workflow()["on"]["schedule"]]
    assert crons and all(len(cron.split()) == 5 for cron in crons)


def test_it_runs_the_readme_command():
    command = _readme_chaos_command()
    assert command == "make chaos"
    (job,) = _workflow()["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any(re.search(rf"(^|\s){re.escape(command)}$", run.strip()) for run in runs), runs


def test_it_uploads_reports_and_publishes_junit_even_when_scenarios_fail():
    (job,) = _workflow()["jobs"].values()
    uses = {step["uses"].split("@")[0]: step for step in job["steps"] if "uses" in step}
    upload = uses["actions/upload-artifact"]
    assert upload["with"]["path"].rstrip("/") == "reports" and upload["if"] == "always()"
    publish = uses["EnricoMi/publish-unit-test-result-action"]
    assert publish["with"]["files"] == "reports/*/junit.xml" and publish["if"] == "always()"
    assert _workflow()["permissions"]["checks"] == "write"


def test_the_junit_file_is_where_the_workflow_looks():
    """make chaos writes under reports/; each run's junit.xml lands in reports/<run-id>/ (shown
    by tests/integration/test_reports_e2e.py), which the publisher's glob matches."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^chaos:.*\n\t.*pytest scenarios/ --chaos-reports=reports", makefile, re.M)
