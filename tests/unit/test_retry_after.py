"""The shop's Retry-After: how a header is read, and the gate every caller of a vendor asks."""

import importlib.util
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.fake_clock import FakeClock

spec = importlib.util.spec_from_file_location(
    "shop_retry_after", Path(__file__).resolve().parents[2] / "services" / "shop" / "retry_after.py")
retry_after = importlib.util.module_from_spec(spec)
spec.loader.exec_module(retry_after)

NOW = 1_800_000_000.0
CAP = 60.0


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, timezone.utc), usegmt=True)


@pytest.mark.parametrize("value,seconds", [
    ("2", 2.0), (" 7 ", 7.0), ("0", 0.0),
    (http_date(NOW + 30), 30.0),
    (http_date(NOW - 30), 0.0),  # a date already past: call now
    ("86400", CAP), (http_date(NOW + 86400), CAP),  # bounded, however long the vendor asks
])
def test_seconds_and_http_dates_are_read_and_bounded(value, seconds):
    """Catches: an HTTP-date ignored (the caller retries at its own backoff), a past date read as
    a negative wait, or a huge value honoured unbounded (settlement stopped for a day)."""
    assert retry_after.parse(value, NOW, CAP) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "-1", "1.5", "soon", "Mon, 99 Foo 2026 99:99:99 GMT",
                                   "Wed, 21 Oct 2026 07:28:00"])
def test_what_is_not_a_retry_after_is_none(value):
    """Catches: a garbled header taken for a wait (or raising inside the vendor client), and a
    zone-less date read in the gateway's local zone."""
    assert retry_after.parse(value, NOW, CAP) is None


def test_no_call_is_admitted_before_retry_after_has_passed():
    """Catches: a gate that lets a caller through before the vendor's Retry-After ends."""
    clock = FakeClock()
    gate = retry_after.Gate(clock)
    assert gate.admit() is False  # no Retry-After yet: every call goes, none a trial
    gate.answered(429, 2.0, trial=False)
    clock.now += 1.9
    with pytest.raises(retry_after.Held) as held:
        gate.admit()
    assert held.value.remaining_s == pytest.approx(0.1)
    clock.now += 0.1
    assert gate.admit() is True


def test_after_retry_after_one_trial_goes_and_its_answer_decides():
    """Catches: every held caller let through at once when the time is up (they reach the vendor
    together, all inside its next Retry-After), and a trial whose answer never reopens the gate."""
    clock = FakeClock()
    gate = retry_after.Gate(clock)
    gate.answered(429, 1.0, trial=False)
    clock.now += 1.0
    assert gate.admit() is True
    with pytest.raises(retry_after.Held):
        gate.admit()  # the trial is on its way
    gate.answered(429, 1.0, trial=True)  # refused again: held for the new Retry-After
    with pytest.raises(retry_after.Held):
        gate.admit()
    clock.now += 1.0
    assert gate.admit() is True
    gate.answered(201, None, trial=True)
    assert gate.admit() is False and gate.remaining() == 0


def test_a_trial_without_an_answer_ends_and_the_next_caller_tries():
    """Catches: a trial that timed out or was cancelled leaving the gate shut for good."""
    clock = FakeClock()
    gate = retry_after.Gate(clock)
    gate.answered(503, 0.5, trial=False)
    clock.now += 0.5
    assert gate.admit() is True
    gate.failed(trial=True)
    assert gate.admit() is True


def test_an_answer_to_a_call_sent_before_the_limit_does_not_lift_it():
    """Catches: a call admitted before the 429 came back, answered 201 afterwards, reopening the
    gate the vendor had just closed (and a shorter Retry-After shortening a longer one)."""
    clock = FakeClock()
    gate = retry_after.Gate(clock)
    gate.answered(429, 2.0, trial=False)
    gate.answered(201, None, trial=False)
    gate.answered(429, 1.0, trial=False)
    assert gate.remaining() == pytest.approx(2.0)


@pytest.mark.parametrize("status", [500, 402, 201])
def test_only_rate_limits_and_unavailability_hold(status):
    """Catches: a Retry-After on another answer (a 500, a decline) holding every order back."""
    gate = retry_after.Gate(FakeClock())
    gate.answered(status, 5.0, trial=False)
    assert gate.remaining() == 0
