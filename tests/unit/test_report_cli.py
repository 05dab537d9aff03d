"""`chaos report [RUN]`: the summary table of a written run, and one line for a missing one."""

from __future__ import annotations

from harness.report import html, json_report
from tests.conftest import BIN, run
from tests.unit.test_report_data import RUN, scenario
from tests.unit.test_report_writers import FAILED_REASON


def _written(tmp_path):
    run_dir = tmp_path / RUN["run_id"]
    scenarios = [scenario(), scenario("disk_fill_node_a", "failed", FAILED_REASON)]
    html.write(run_dir, RUN, scenarios)
    json_report.write(run_dir, RUN, scenarios)
    return run_dir


def test_report_prints_the_summary_of_the_latest_run_and_the_html_path(tmp_path):
    run_dir = _written(tmp_path)
    result = run([str(BIN / "chaos"), "report", "--reports", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["SCENARIO", "VERDICT", "TTD", "TTR", "REASON"]
    assert lines[2].split()[:6] == ["payment_outage", "passed", "0.20", "s", "1.70", "s"]
    assert lines[3].startswith("disk_fill_node_a") and "[backoff]" in lines[3]
    assert lines[-2].startswith("time: ") and "faults active" in lines[-2]  # beside the run's length
    assert lines[-1] == f"report: {(run_dir / 'report.html').resolve()}"


def test_report_of_a_named_run(tmp_path):
    _written(tmp_path)
    result = run([str(BIN / "chaos"), "report", RUN["run_id"], "--reports", str(tmp_path)])
    assert result.returncode == 0 and "payment_outage" in result.stdout


def test_a_missing_run_is_one_line_and_exit_2(tmp_path):
    for args in (["20200101T000000-0a0b0c"], []):
        result = run([str(BIN / "chaos"), "report", *args, "--reports", str(tmp_path)])
        assert result.returncode == 2 and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chaos: no such run"), result.stderr
