from harness import retries

INITIAL_S, MAX_S = 0.1, 1.0  # the shop's retry schedule (services/shop/settings.py)


def test_intervals_and_the_backoff_floors():
    times = [10.0, 10.1, 10.3, 10.7]
    gaps = retries.intervals(times)
    assert [round(g, 3) for g in gaps] == [0.1, 0.2, 0.4]
    assert retries.backoff_floors(5, INITIAL_S, MAX_S) == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert retries.backs_off(gaps, INITIAL_S, MAX_S)


def test_retries_that_do_not_double_are_not_backoff():
    """Catches a judgement that lets through what the protection switch (`--sut-disable backoff`)
    turns the shop into, retries back to back, or a retry loop with a fixed or linear delay, or a
    single interval (no growth can be seen in one)."""
    assert not retries.backs_off([0.004, 0.003, 0.005], INITIAL_S, MAX_S)
    assert not retries.backs_off([0.1, 0.1, 0.1], INITIAL_S, MAX_S)
    assert not retries.backs_off([0.1, 0.2, 0.3], INITIAL_S, MAX_S)
    assert not retries.backs_off([0.3], INITIAL_S, MAX_S)
    assert not retries.backs_off([0.1, 0.19], INITIAL_S, MAX_S, slack_s=0)


def test_backoff_stretched_by_a_loaded_machine_is_still_backoff():
    """Catches a judgement by wall time that load stretches: the shop's waits (0.1, 0.2, 0.4 s
    plus up to 0.05 s of jitter), each delivered late by a busy machine, no longer double one
    another (a judgement by the ratio between them, 1.5 with 0.05 s of slack, fails on
    [0.18, 0.21, 0.43]), but each still arrives no sooner than its wait; and its cap, which stops
    the growth."""
    assert retries.backs_off([0.18, 0.21, 0.43], INITIAL_S, MAX_S)
    assert retries.backs_off([0.35, 0.22, 0.9], INITIAL_S, MAX_S)
    assert retries.backs_off([0.104, 0.231, 0.418], INITIAL_S, MAX_S)
    assert retries.backs_off([0.1, 0.2, 0.4, 0.8, 1.0, 1.0], INITIAL_S, MAX_S)


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


def _attempt(ts: float, key: str = "a", retry_after_s: int | None = None) -> dict:
    return {"key": key, "ts": ts, "retry_after_s": retry_after_s}


def test_a_call_inside_any_retry_after_is_early_whatever_its_key():
    """Catches a judgement per key (the settler's call for another order inside the wait passes)
    and one that forgets a longer wait when a shorter one follows it."""
    attempts = [_attempt(10.0, "a", 2), _attempt(10.1, "a", 2), _attempt(11.0, "b"),
                _attempt(12.2, "c", 1), _attempt(13.3, "d")]
    assert [e["ts"] for e in retries.early_calls(attempts)] == [10.1, 11.0]
    assert [e["ts"] for e in retries.early_calls([_attempt(10.0, "a", 5), _attempt(15.0, "b", 1),
                                                  _attempt(15.5, "c")])] == [15.5]
    assert [e["ts"] for e in retries.early_calls([_attempt(10.0, "a", 5), _attempt(11.0, "b", 1),
                                                  _attempt(13.0, "c")])] == [11.0, 13.0]


def test_calls_that_wait_out_retry_after_are_not_early():
    """Catches a judgement that counts the answer's own arrival, an attempt at the end of the
    wait as two clocks read it (within their slack), or attempts with no Retry-After at all, as
    early."""
    attempts = [_attempt(10.0, "a", 2), _attempt(12.0, "b", 2), _attempt(13.998, "c"), _attempt(14.5, "c")]
    assert not retries.early_calls(attempts)
    assert not retries.early_calls([_attempt(1.0), _attempt(1.01), _attempt(1.02)])
