from harness.ledger import History, check


def _history(*outcomes):
    history = History()
    for index, (outcome, status) in enumerate(outcomes):
        op = history.invoke("place_order", f"k{index}", {})
        body = {"id": f"o{index}", "status": "X"} if status and status < 300 else {}
        history.complete(op, outcome, status, body)
    return history


def test_clean_history_passes():
    history = _history(("ok", 201), ("ok", 202))
    verdict = check(history, {"o0": {"status": "PAID"}, "o1": {"status": "PAID"}},
                    {"o0": {}, "o1": {}}, {"o0": 1, "o1": 1})
    assert verdict.ok, verdict.explain()


def test_lost_limbo_and_double_charge_are_each_caught():
    history = _history(("ok", 201), ("ok", 202), ("ok", 201))
    verdict = check(history, {"o0": None, "o1": {"status": "PAYMENT_PENDING"}, "o2": {"status": "PAID"}},
                    {"o2": {}}, {"o2": 2})
    assert verdict.lost == ["o0"]
    assert verdict.not_terminal == {"o1": "PAYMENT_PENDING"}
    assert verdict.charged_twice == {"o2": 2}
    assert not verdict.ok


def test_paid_without_a_vendor_charge_is_caught():
    verdict = check(_history(("ok", 201)), {"o0": {"status": "PAID"}}, {}, {})
    assert verdict.never_charged == ["o0"]


def test_unknown_and_failed_operations_are_not_accepted_orders():
    history = _history(("unknown", None), ("fail", 502), ("ok", 201))
    assert [op.order_id for op in history.accepted()] == ["o2"]
    assert history.ops[0].outcome == "unknown"
