"""The gateway's token bucket (services/shop/shaping.py), on a clock the test moves."""

import importlib.util
from pathlib import Path

import pytest

from scenarios.shop.overload import percentile_ms
from tests.fake_clock import FakeClock

spec = importlib.util.spec_from_file_location(
    "shop_shaping", Path(__file__).resolve().parents[2] / "services" / "shop" / "shaping.py")
shaping = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shaping)


def test_a_quiet_bucket_admits_its_burst_at_once_and_sheds_the_next():
    """Catches a bucket that starts empty (a quiet shop refusing its first orders) or one that
    admits past its burst (no shaping at all)."""
    bucket = shaping.TokenBucket(rate=10, burst=3, clock=FakeClock())
    assert [bucket.take() for _ in range(3)] == [None, None, None]
    assert bucket.take() == pytest.approx(0.1)


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst():
    """Catches a refill that ignores elapsed time (shed for ever), or one that is not capped at
    the burst (a long quiet spell letting a flood through at once)."""
    clock = FakeClock()
    bucket = shaping.TokenBucket(rate=4, burst=2, clock=clock)
    bucket.take(), bucket.take()
    clock.now += 0.25  # one token's worth
    assert bucket.take() is None
    assert bucket.take() == pytest.approx(0.25)
    clock.now += 3600
    assert [bucket.take() for _ in range(3)] == [None, None, pytest.approx(0.25)]


def test_a_refusal_names_the_wait_until_the_next_token():
    """Catches a Retry-After that is not the time to the next token (a client told to come back
    before it could be admitted, or much later than it needs)."""
    clock = FakeClock()
    bucket = shaping.TokenBucket(rate=2, burst=1, clock=clock)
    bucket.take()
    clock.now += 0.2
    assert bucket.take() == pytest.approx(0.3)


def test_a_clock_that_steps_back_takes_no_token_away():
    """Catches a refill that goes negative when the clock is read out of order."""
    clock = FakeClock()
    bucket = shaping.TokenBucket(rate=1, burst=1, clock=clock)
    clock.now -= 5
    assert bucket.take() is None


@pytest.mark.parametrize("wait_s,header", [(0.01, "1"), (1.0, "1"), (1.2, "2"), (0.0, "1")])
def test_retry_after_is_whole_seconds_and_at_least_one(wait_s, header):
    """Catches a Retry-After of 0 (a shed client coming straight back) or a fraction HTTP
    clients don't read."""
    assert shaping.retry_after(wait_s) == header


@pytest.mark.parametrize("rate,burst", [(0, 1), (-1, 1), (1, 0)])
def test_a_bucket_that_could_never_admit_is_refused(rate, burst):
    """Catches settings that would shed every order without saying why."""
    with pytest.raises(ValueError):
        shaping.TokenBucket(rate=rate, burst=burst)


def test_percentile_is_the_nearest_rank_and_none_without_operations():
    """Catches a p99 that interpolates below the slowest answers of a small sample, or reads
    an empty sample as 0 ms (a missing figure passing a budget)."""
    class Op:
        def __init__(self, latency_s: float) -> None:
            self.latency_s = latency_s

    ops = [Op(n / 1000) for n in range(1, 101)]
    assert percentile_ms(ops, 0.99) == 99.0
    assert percentile_ms(ops, 0.50) == 50.0
    assert percentile_ms(ops[:3], 0.99) == 3.0
    assert percentile_ms([], 0.99) is None
