from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.load import Load, Workload, parse_load

WORKLOAD = Workload(Path("locustfile.py"))


class _Stack:
    edge_url = "http://10.0.0.1:8000"


def test_load_option_reads_users_and_rate():
    assert parse_load("4:2") == (4, 2.0)
    assert parse_load("10") == (10, 2.0)
    with pytest.raises(HarnessError, match="USERS:RATE"):
        parse_load("many:fast")


@pytest.mark.parametrize("kwargs", [{"users": 0}, {"users": 201}, {"rate": 0}, {"duration_s": 0}, {"workers": 17}])
def test_load_is_bounded(kwargs):
    with pytest.raises(HarnessError, match="out of bounds"):
        Load(_Stack(), WORKLOAD, **kwargs)


def test_load_only_goes_to_loopback():
    with pytest.raises(HarnessError, match="only goes to 127.0.0.1"):
        Load(_Stack(), WORKLOAD)


def _stats(tmp_path, csv_text=None):
    load = Load.__new__(Load)  # no stack: only the stats file is read
    load.dir = tmp_path
    if csv_text is not None:
        (tmp_path / "stats_stats.csv").write_text(csv_text)
    return load.stats()


HEADER = "Type,Name,Request Count,Failure Count,50%,99%,Requests/s\n"


def test_missing_locust_stats_are_missing_not_zero(tmp_path):
    assert _stats(tmp_path) == {}
    assert _stats(tmp_path, HEADER + "POST,POST /orders,3,0,20,90,1.0\n") == {}  # no aggregate line
    empty = _stats(tmp_path, HEADER + ",Aggregated,0,0,N/A,N/A,0\n")
    assert empty["requests"] == 0 and empty["p99_ms"] is None and empty["p50_ms"] is None


def test_locust_stats_are_read_from_the_aggregate_line(tmp_path):
    stats = _stats(tmp_path, HEADER + "POST,POST /orders,10,1,20,90,1.5\n,Aggregated,10,1,20,90,1.5\n")
    seen = (stats["requests"], stats["failures"], stats["p50_ms"], stats["p99_ms"], stats["rps"])
    assert seen == (10, 1, 20.0, 90.0, 1.5)
