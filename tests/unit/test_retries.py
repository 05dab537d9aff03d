from harness import retries


def test_intervals_and_growth():
    times = [10.0, 10.1, 10.3, 10.7]
    gaps = retries.intervals(times)
    assert [round(g, 3) for g in gaps] == [0.1, 0.2, 0.4]
    assert retries.grows(gaps)
    assert not retries.grows([0.2, 0.2, 0.4])
    assert not retries.grows([0.3])


def test_a_fixed_delay_with_noise_is_not_backoff():
    assert not retries.grows([0.20, 0.21, 0.23])  # increasing, but nowhere near exponential
    assert not retries.grows([0.5, 0.5, 0.5])


def test_exponential_backoff_with_the_shops_jitter_is_backoff():
    # The shop waits min(0.1 * 2**n + uniform(0, 0.05), 1.0) between its 4 attempts; the worst
    # draws for the ratio are full jitter on one wait and none on the next.
    assert retries.grows([0.15, 0.20, 0.45])
    assert retries.grows([0.15, 0.25, 0.40])
    assert retries.grows([0.104, 0.231, 0.418])
    assert not retries.grows([0.15, 0.20, 0.45], jitter_s=0.0)  # the allowance is what lets it through
    assert retries.grows([0.1, 0.2, 0.4], ratio=2.0) and not retries.grows([0.1, 0.2, 0.39], ratio=2.0, jitter_s=0)


def test_attempts_by_key_sorts_each_key():
    attempts = [{"key": "a", "ts": 3}, {"key": "b", "ts": 1}, {"key": "a", "ts": 2}]
    assert retries.attempts_by_key(attempts) == {"a": [2, 3], "b": [1]}


def _state(ts, state):
    return {"event": "breaker_state_changed", "state": state, "ts": ts}


def test_breaker_windows_close_on_half_open_and_stay_open_until_the_end():
    events = [_state(1.0, "opened"), {"event": "other", "ts": 1.5}, _state(3.0, "half-opened"),
              _state(3.01, "opened"), _state(5.0, "half-opened"), _state(5.1, "closed"), _state(7.0, "opened")]
    assert retries.breaker_windows(events, until=9.0) == [(1.0, 3.0), (3.01, 5.0), (7.0, 9.0)]
    assert retries.breaker_windows([], until=9.0) == []


def test_inside_respects_the_margin():
    windows = [(1.0, 2.0)]
    assert retries.inside(1.5, windows)
    assert not retries.inside(1.02, windows, margin=0.05)
    assert not retries.inside(2.5, windows)
