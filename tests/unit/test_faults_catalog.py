import pytest

from harness.errors import HarnessError
from harness.faults import CATALOG, Chaos, describe
from harness.faults.base import FaultJournal
from harness.faults.http import VendorStatus


def test_catalog_lists_parameters_with_types_defaults_and_ranges():
    rows = {row["name"]: row for row in describe()}
    status = rows["http.status"]
    assert status["family"] == "http" and status["targets"] == ["payment_gateway"]
    assert status["params"]["status"]["enum"] == [500, 503, 429]
    assert status["params"]["status"]["default"] == 503
    assert set(CATALOG) == set(rows)


def test_bad_values_and_targets_are_one_line_errors():
    journal = FaultJournal()
    with pytest.raises(HarnessError, match="bad value for status"):
        VendorStatus(None, "payment_gateway", journal, status=418)
    with pytest.raises(HarnessError, match="bad value for duration_s"):
        VendorStatus(None, "payment_gateway", journal, duration_s=-1)
    with pytest.raises(HarnessError, match="can't target 'postgres'"):
        VendorStatus(None, "postgres", journal)
    with pytest.raises(HarnessError, match="unknown fault 'nope'"):
        Chaos(None).fault("nope", "payment_gateway")


def test_journal_windows_pair_inject_with_heal():
    journal = FaultJournal()
    journal.entries = [
        {"ts": 1.0, "action": "inject", "fault": "a", "target": "t"},
        {"ts": 1.1, "action": "landed", "fault": "a", "target": "t"},
        {"ts": 2.0, "action": "inject", "fault": "b", "target": "t"},
        {"ts": 3.0, "action": "heal", "fault": "a", "target": "t"},
    ]
    assert journal.windows() == [("a", 1.0, 3.0), ("b", 2.0, None)]
