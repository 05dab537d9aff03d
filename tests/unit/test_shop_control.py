"""The shop's bounded, sequenced lists (shop.ring), its control-secret verdict (shop.control)
and the harness's side of both: pure logic, read from the shop's files (stdlib only)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from harness import compose, topology
from scenarios.shop.clients import SinkClient

SHOP = Path(__file__).resolve().parents[2] / "services" / "shop"


def _shop_module(name: str):
    spec = importlib.util.spec_from_file_location(f"shop_{name}", SHOP / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


ring = _shop_module("ring")
control = _shop_module("control")


def _filled(count: int, capacity: int = 5):
    buffer = ring.Ring(capacity=capacity)
    for n in range(count):
        buffer.append({"n": n})
    return buffer


def test_items_are_numbered_and_read_after_a_cursor():
    """Catches a read that gives the item at the cursor again, or skips the one after it."""
    buffer = _filled(3)
    assert [i["seq"] for i in buffer.items] == [1, 2, 3]
    page = buffer.since(1)
    assert [i["n"] for i in page.items] == [1, 2] and page.cursor == 3 and page.missed == 0
    again = buffer.since(page.cursor)
    assert again.items == [] and again.cursor == 3 and again.newest == 3


def test_the_ring_is_bounded_and_a_read_says_what_it_missed():
    """Catches a list that grows without end (the 24-hour game day), and a reader that cannot
    tell that the oldest items were dropped before it read them."""
    buffer = _filled(8, capacity=5)
    assert len(buffer.items) == 5 and [i["seq"] for i in buffer.items] == [4, 5, 6, 7, 8]
    page = buffer.since(1)
    assert [i["seq"] for i in page.items] == [4, 5, 6, 7, 8] and page.missed == 2
    assert buffer.since(6).missed == 0 and [i["seq"] for i in buffer.since(6).items] == [7, 8]


def test_a_read_is_bounded_by_its_limit_and_goes_on_from_its_cursor():
    """Catches a page that returns everything (an unbounded answer) or a cursor that skips items."""
    buffer = _filled(5)
    first = buffer.since(0, limit=2)
    second = buffer.since(first.cursor, limit=2)
    third = buffer.since(second.cursor, limit=2)
    assert [[i["seq"] for i in p.items] for p in (first, second, third)] == [[1, 2], [3, 4], [5]]
    assert buffer.since(0, limit=0).items == [] and buffer.since(0, limit=0).newest == 5


def test_a_cursor_from_before_a_restart_reads_from_the_start():
    """Catches a reader stuck after the service restarted (numbers begin at 1 again): its cursor
    is beyond the newest item and it would never see a new one."""
    buffer = _filled(2)
    page = buffer.since(500)
    assert [i["seq"] for i in page.items] == [1, 2] and page.cursor == 2


def test_clearing_keeps_the_numbering_so_an_earlier_cursor_reads_only_new_items():
    """Catches a reset that restarts the numbers: a reader marked before would read items it had
    seen as new, or skip the new ones."""
    buffer = _filled(3)
    buffer.clear()
    assert buffer.since(3).items == []
    buffer.append({"n": "new"})
    assert [i["seq"] for i in buffer.since(3).items] == [4]


def test_an_item_updated_after_it_was_appended_is_read_updated():
    """The vendor completes a journal entry after numbering it: the ring must hold the same dict."""
    buffer = ring.Ring()
    entry = buffer.append({"key": "k"})
    entry["status"] = 201
    assert buffer.since(0).items[0]["status"] == 201


@pytest.mark.parametrize("given,expected,status", [
    (None, "s3cret", 401), ("", "s3cret", 401), ("wrong", "s3cret", 403), ("s3cre", "s3cret", 403),
    ("s3cret", "", 403), ("", "", 401), ("s3cret", "s3cret", None)])
def test_control_verdict_refuses_without_the_secret_or_with_a_wrong_one(given, expected, status):
    """Catches a gate that lets a missing or wrong secret through, or that opens when the service
    was started without a secret (it must fail closed)."""
    assert control.verdict(given, expected) == status


def test_the_harness_and_the_shop_name_the_same_header_and_variable():
    """Catches the two sides drifting apart: every control call would then be refused."""
    assert (control.HEADER, control.CONTROL_SECRET_ENV) == (topology.CONTROL_HEADER, topology.CONTROL_SECRET_ENV)


def test_every_shop_service_is_given_the_secret_and_compose_an_overridable_default():
    """Catches a service started without the run's secret (its control calls all refused), and a
    compose file with a secret fixed in it (an operator could not set one on a shared host)."""
    for service in topology.SERVICES.values():
        env = topology.active().service_env(service, "resilient", secret="run-secret")
        assert env.get(topology.CONTROL_SECRET_ENV) == ("run-secret" if service.image == "shop" else None)
    text = compose.compose_yaml()
    assert f"{topology.CONTROL_SECRET_ENV}: ${{{topology.CONTROL_SECRET_ENV}:-" in text


def _sink_over(buffer) -> SinkClient:
    """A SinkClient whose /alerts is the shop's Ring itself, answered in process (no server)."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        page = buffer.since(int(request.url.params["since"]), int(request.url.params["limit"]))
        return httpx.Response(200, json=page.as_json("alerts"))

    client = SinkClient("http://sink.test", "secret")
    client.http = httpx.Client(base_url="http://sink.test", transport=httpx.MockTransport(answer))
    return client


def test_a_live_view_reads_only_the_new_tail_and_holds_a_bounded_one():
    """Catches `chaos status --watch` fetching every alert on every redraw (a 24-hour game day's
    worth each second) or holding more than the few it shows, and a view that repeats or skips
    alerts between redraws."""
    buffer = ring.Ring()
    for n in range(50):
        buffer.append({"n": n})
    sink = _sink_over(buffer)
    first, cursor = sink.recent("alerts", None, 5)
    assert [a["n"] for a in first] == [45, 46, 47, 48, 49] and cursor == 50
    buffer.append({"n": 50})
    buffer.append({"n": 51})
    then, cursor = sink.recent("alerts", cursor, 5)
    assert [a["n"] for a in then] == [50, 51] and cursor == 52
    for n in range(52, 70):
        buffer.append({"n": n})
    behind, cursor = sink.recent("alerts", cursor, 5)  # far behind: only the newest 5, not all 18
    assert [a["n"] for a in behind] == [65, 66, 67, 68, 69]
    restarted = ring.Ring()
    restarted.append({"n": "after restart"})
    sink = _sink_over(restarted)
    again, _ = sink.recent("alerts", cursor, 5)  # a cursor beyond the newest: the sink restarted
    assert [a["n"] for a in again] == ["after restart"]


def test_a_client_reads_everything_after_its_mark_across_pages():
    """Catches a scenario's read that stops at the first page (it would miss charges past 1,000)
    or that counts what came before its mark (a kept stack's earlier history as its own)."""
    buffer = ring.Ring()
    for n in range(3):
        buffer.append({"n": n})
    sink = _sink_over(buffer)
    sink.mark()
    for n in range(3, 2503):
        buffer.append({"n": n})
    got = sink.alerts()
    assert len(got) == 2500 and got[0]["n"] == 3 and got[-1]["n"] == 2502


def test_a_read_never_returns_more_than_a_page_whatever_it_asks_for():
    """Catches an endpoint whose `limit` reaches the ring unbounded: one request could then
    carry the whole 10,000-item list (the bound is the ring's, for every endpoint at once)."""
    buffer = _filled(ring.PAGE + 5, capacity=ring.CAPACITY)
    page = buffer.since(0, ring.PAGE * 10)
    assert len(page.items) == ring.PAGE and page.cursor == ring.PAGE
