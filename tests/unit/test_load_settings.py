import pytest

from harness.errors import HarnessError
from harness.load import Load, parse_load


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
        Load(_Stack(), **kwargs)


def test_load_only_goes_to_loopback():
    with pytest.raises(HarnessError, match="only goes to 127.0.0.1"):
        Load(_Stack())
