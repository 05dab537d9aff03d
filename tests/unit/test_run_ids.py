"""Run ids: exactly the ids the harness makes pass, anything else is refused before a path."""

from __future__ import annotations

import pytest

from harness import gameday, run_ids
from harness import state as harness_state
from harness.errors import HarnessError
from harness.report import run_directory
from harness.stack import new_run_id
from tests.conftest import BIN, run

BAD = ("../x", "/etc/passwd", "..", "", "latest", "20270115T080000-abcdef/../../x", "20270115T080000-ABCDEF",
       "20270115T080000-abcdef-s0", "20270115T080000-abcdef\n", "compose2")


def test_every_run_id_the_harness_makes_is_valid():
    """Catches a pattern narrower than the ids in use: a session's -s<n> stacks or compose's
    journal refused."""
    for run_id in (new_run_id(), f"{new_run_id()}-s1", f"{new_run_id()}-s12", "compose"):
        assert run_ids.valid(run_id) == run_id


@pytest.mark.parametrize("bad", BAD)
def test_what_is_not_a_run_id_never_becomes_a_path(bad, tmp_path):
    """Catches a path made of an unchecked run id: journal, samples and report directories
    each refuse it (one line, HarnessError)."""
    for make in (lambda: harness_state.journal_path(bad, tmp_path), lambda: gameday.samples_path(bad, tmp_path),
                 lambda: run_directory(tmp_path, bad), lambda: harness_state.append_journal(bad, {"ts": 0}, tmp_path)):
        with pytest.raises(HarnessError, match="bad run id"):
            make()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["down", "--run", "../x"], ["status", "--run", "../x"], ["report", "../x"],
                                  ["runbook", "--run", "../x"], ["heal", "--all", "--run", "../x"],
                                  ["inject", "network.latency", "--target", "edge_gateway", "--run", "../x"]])
def test_a_bad_run_on_the_command_line_is_refused_with_exit_2_and_nothing_written(args, tmp_path):
    """Catches --run reaching a path unchecked: `chaos down --run ../x` would write its report
    (and `inject` its journal) outside the reports and state directories."""
    state, reports = tmp_path / "state", tmp_path / "reports"
    state.mkdir()
    reports.mkdir()
    extra = ["--reports", str(reports)] if args[0] in ("down", "report", "runbook") else []
    result = run([str(BIN / "chaos"), *args, *extra], {"CHAOS_STATE_DIR": str(state)})
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.startswith("chaos: bad run id '../x'") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert [p for p in tmp_path.rglob("*")] == [state, reports]  # nothing written anywhere
