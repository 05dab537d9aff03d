from harness import polling


def test_wait_for_is_bounded_and_returns_the_last_value():
    calls = []
    value, took = polling.wait_for(lambda: calls.append(1) or len(calls) >= 3 and "done", 5, 0.01)
    assert value == "done" and len(calls) == 3
    value, took = polling.wait_for(lambda: None, 0.2, 0.05)
    assert value is None and took >= 0.2  # it gave up only once the time had run out
