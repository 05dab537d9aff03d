"""Where a plain `pytest` session writes its reports: reports/ under the rootdir unless
--chaos-reports moves them; a session without chaos scenarios writes none. Each session here
has its own rootdir (a tmp dir), so none of them touches the repository's reports/."""

from __future__ import annotations

import json

from harness.plugin import reports_dir
from tests.conftest import BIN, ROOT, run

SCENARIO = """import pytest

@pytest.mark.chaos(root_cause='invalid_token', guards={'latency': None}, preconditions=('latency',))
def test_auth_outage():
    pass
"""

PLAIN = """def test_nothing_chaotic():
    pass
"""


def _session(tmp_path, source: str, *options: str):
    (tmp_path / "test_x.py").write_text(source)
    return run([str(BIN / "pytest"), str(tmp_path / "test_x.py"), "-q", "-p", "no:cacheprovider",
                f"--rootdir={tmp_path}", *options], timeout=120)


def test_a_plain_session_writes_its_reports_under_the_rootdir(tmp_path):
    """Catches the reports still written only when --chaos-reports is passed (a plain
    `pytest scenarios/ -k NAME` leaves nothing to read), and reports placed relative to the
    invocation directory: pytest runs here from the repository, the rootdir is tmp_path."""
    result = _session(tmp_path, SCENARIO)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    latest = tmp_path / "reports" / "latest"
    (scenario,) = json.loads((latest / "report.json").read_text())["scenarios"]
    assert scenario["name"] == "auth_outage" and (latest / "junit.xml").is_file()
    assert f"reports written to {tmp_path / 'reports'}" in result.stderr
    assert not (ROOT / "reports" / latest.resolve().name).exists()


def test_the_option_moves_the_reports(tmp_path):
    """Catches --chaos-reports ignored once there is a default (reports in both places, or only
    under the rootdir)."""
    elsewhere = tmp_path / "elsewhere"
    result = _session(tmp_path, SCENARIO, f"--chaos-reports={elsewhere}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (elsewhere / "latest" / "report.json").is_file() and (elsewhere / "latest" / "junit.xml").is_file()
    assert not (tmp_path / "reports").exists()


def test_a_session_without_chaos_scenarios_leaves_no_reports(tmp_path):
    """Catches every pytest of the venv (the plugin is loaded by all of them) leaving a run
    directory with a junit.xml under reports/, though it ran no chaos scenario."""
    result = _session(tmp_path, PLAIN)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not (tmp_path / "reports").exists()


def test_an_explicit_junitxml_is_left_where_it_was_asked_for(tmp_path):
    """Catches the plugin dropping (or moving) a junit.xml the user asked for with --junitxml
    in a session without chaos scenarios."""
    junit = tmp_path / "mine.xml"
    result = _session(tmp_path, PLAIN, f"--junitxml={junit}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert junit.is_file() and not (tmp_path / "reports").exists()


def test_the_harness_own_test_session_writes_no_reports_into_the_repository(request):
    """Catches `make test` (this very session, rootdir the repository) taking the default
    reports/ of the repository for its junit.xml and any chaos-marked test it runs: the tests'
    conftest gives the session a temporary directory instead."""
    assert reports_dir(request.config).resolve() != (ROOT / "reports").resolve()
