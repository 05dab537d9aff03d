"""The first-byte wire checks against tiny loopback servers: each protocol's answer is recognised,
and the judgements the network faults build on fail when the effect is not there."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.errors import HarnessError
from harness.faults import check
from harness.faults.network import TOXICS, check_sees, heal_margin_s
from harness.faults.wire import PROTOCOLS, WireCheck

CONNECTION_START = bytes([1, 0, 0]) + struct.pack("!I", 4) + b"\x00\x0a\x00\x0a" + bytes([0xCE])
HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@contextmanager
def server(answer: bytes, delay_s: float = 0.0, close: bool = True, connections: int = 8) -> Iterator[int]:
    """A loopback server that answers each connection after delay_s (bounded in connections)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        for _ in range(connections):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                time.sleep(delay_s)
                conn.sendall(answer)
                if not close:
                    conn.recv(1024)  # held open until the client leaves, as Postgres and RabbitMQ do

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.parametrize("protocol, answer, close", [
    ("http", HTTP_OK, True), ("sql", b"N", False), ("amqp", CONNECTION_START, False)])
def test_each_protocols_answer_is_recognised_as_whole(protocol, answer, close):
    with server(answer, close=close) as port:
        seen = WireCheck("127.0.0.1", port, PROTOCOLS[protocol], "test").exchange(2.0)
    assert seen.complete and seen.error is None and seen.received == len(answer)


@pytest.mark.parametrize("protocol, cut", [("http", HTTP_OK[:-1]), ("amqp", CONNECTION_START[:-1]), ("sql", b"E")])
def test_a_cut_or_wrong_answer_is_not_whole(protocol, cut):
    with server(cut, close=True) as port:
        assert not WireCheck("127.0.0.1", port, PROTOCOLS[protocol], "test").exchange(1.0).complete


def test_latency_is_shown_only_when_the_answer_is_late():
    params = check("network.latency", "postgres", latency_ms=200).params
    with server(b"N", delay_s=0.25, close=False) as slow, server(b"N", close=False) as quick:
        assert TOXICS["latency"].shows(WireCheck("127.0.0.1", slow, PROTOCOLS["sql"], "t").exchange(1.5), params)
        assert not TOXICS["latency"].shows(WireCheck("127.0.0.1", quick, PROTOCOLS["sql"], "t").exchange(1.5), params)


def test_a_heal_is_proven_only_near_the_baseline():
    with server(b"N", close=False) as quick, server(b"N", delay_s=0.3, close=False) as slow:
        wire_check = WireCheck("127.0.0.1", quick, PROTOCOLS["sql"], "t")
        wire_check.measure_baseline()
        assert wire_check.normal(0.1)
        wire_check.port = slow  # the same baseline, an answer still 300 ms late: not healed
        assert not wire_check.normal(0.1)


def test_a_baseline_that_cant_be_measured_fails_before_anything_is_applied():
    with server(b"", close=True) as port:
        with pytest.raises(HarnessError, match="does not answer normally before the fault"):
            WireCheck("127.0.0.1", port, PROTOCOLS["sql"], "the postgres proxy").measure_baseline()


def test_timeout_and_down_are_told_apart():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    try:
        hung = WireCheck("127.0.0.1", listener.getsockname()[1], PROTOCOLS["amqp"], "t").exchange(0.3)
    finally:
        listener.close()
    assert hung.silent and hung.error == "timeout" and not hung.closed_empty
    with server(b"", close=True) as port:
        closed = WireCheck("127.0.0.1", port, PROTOCOLS["amqp"], "t").exchange(0.3)
    assert closed.closed_empty


def _check_with_baseline(protocol: str, received: int) -> WireCheck:
    from harness.faults.wire import Exchange

    return WireCheck("127.0.0.1", 1, PROTOCOLS[protocol], "t",
                 baseline=Exchange(received=received, done_s=0.002, end_s=0.003, complete=True))


def test_what_a_wire_check_can_see_depends_on_protocol_size_and_stream():
    sees = lambda fault, proto, size, **p: check_sees(  # noqa: E731
        check(fault, "postgres", **p).__class__.kind, check(fault, "postgres", **p).params,
        _check_with_baseline(proto, size))
    assert sees("network.slow_close", "http", 150, delay_ms=500)
    assert not sees("network.slow_close", "sql", 1, delay_ms=500)  # Postgres does not close
    assert not sees("network.bandwidth", "sql", 1, rate_kb=10)  # one byte shows no rate
    assert sees("network.bandwidth", "amqp", 500, rate_kb=1)
    assert sees("network.limit_data", "amqp", 500, bytes=64)
    assert not sees("network.limit_data", "amqp", 500, bytes=1024)  # the whole answer passes
    assert not sees("network.bandwidth", "amqp", 500, rate_kb=1, stream="upstream")
    assert sees("network.latency", "sql", 1, latency_ms=100, stream="upstream")


def test_the_heal_margin_is_tighter_than_the_delay_it_must_rule_out():
    assert heal_margin_s("latency", check("network.latency", "auth", latency_ms=100).params) == 0.05
    assert heal_margin_s("latency", check("network.latency", "auth", latency_ms=5000).params) == 0.1
    assert heal_margin_s("timeout", check("network.timeout", "auth").params) == 0.1
