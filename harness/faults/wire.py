"""First-byte wire checks in each upstream's own protocol: the harness's way to see a fault in effect.

A wire check opens one TCP connection (to a Toxiproxy listener, or to a container's published port),
sends the protocol's opening and reads the answer with a raw socket, timing the connect, the
first byte, the complete answer and the peer's close. Raw, because the effects live below the
protocols: when bytes arrive, in how many reads, whether and when the peer closes or resets.

The openings are the cheapest thing each server answers without credentials or side effects:

- HTTP: ``GET /health`` (the server closes after it: the close is timed too);
- PostgreSQL: an SSLRequest (length 8, code 80877103), answered by one byte, ``N`` or ``S``;
- AMQP 0-9-1: the protocol header, answered by a Connection.Start frame.

Every wire check is bounded by its window, and only ever talks to the loopback.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Callable

from harness.errors import HarnessError

HTTP_REQUEST = b"GET /health HTTP/1.1\r\nHost: chaos-probe\r\nX-Chaos-Probe: 1\r\nConnection: close\r\n\r\n"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE


def _http_complete(data: bytes) -> bool:
    """The whole response arrived: the head, and the body by Content-Length."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        return False
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return len(body) >= int(value.strip() or 0)
    return True


def _ssl_reply(data: bytes) -> bool:
    """PostgreSQL's one-byte answer to an SSLRequest: N (no TLS) or S."""
    return data[:1] in (b"N", b"S")


def _amqp_frame(data: bytes) -> bool:
    """A whole method frame on channel 0 (Connection.Start): header, payload, frame end."""
    if len(data) < 7 or data[0] != 1:
        return False
    size: int = struct.unpack("!I", data[3:7])[0]
    return len(data) >= 8 + size and data[7 + size] == FRAME_END


@dataclass(frozen=True)
class Protocol:
    """How one upstream is greeted and when its answer is whole."""

    hello: bytes
    complete: Callable[[bytes], bool]
    closes: bool  # the server closes after answering, so the close is part of the answer


# Keyed like topology.Service.readiness: the protocol each service already speaks to the harness.
PROTOCOLS: dict[str, Protocol] = {
    "http": Protocol(HTTP_REQUEST, _http_complete, closes=True),
    "sql": Protocol(SSL_REQUEST, _ssl_reply, closes=False),
    "amqp": Protocol(AMQP_HEADER, _amqp_frame, closes=False),
}


@dataclass
class Exchange:
    """What one wire check saw, every time in seconds from the start of the connect."""

    received: int = 0
    reads: int = 0
    first_byte_s: float | None = None
    done_s: float | None = None  # when the answer was whole
    end_s: float | None = None  # when the peer closed (EOF)
    error: str | None = None  # refused | reset | timeout
    complete: bool = False

    @property
    def silent(self) -> bool:
        """Nothing came back, though the connection was accepted."""
        return self.received == 0 and self.error != "refused"

    @property
    def closed_empty(self) -> bool:
        """Refused, reset or closed without a byte: nobody behind the listener."""
        return self.received == 0 and self.error != "timeout"


def exchange(host: str, port: int, window_s: float, protocol: Protocol = PROTOCOLS["http"]) -> Exchange:
    """One wire check: connect, send the opening, read until the answer is whole (and, for a protocol
    whose server closes, until EOF) or the window ends."""
    started = time.monotonic()
    deadline = started + window_s
    seen = Exchange()
    data = b""
    try:
        with socket.create_connection((host, port), timeout=window_s) as sock:
            sock.sendall(protocol.hello)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                chunk = sock.recv(65536)
                now = time.monotonic() - started
                if not chunk:
                    seen.end_s = now
                    break
                data += chunk
                seen.reads += 1
                seen.first_byte_s = now if seen.first_byte_s is None else seen.first_byte_s
                if seen.done_s is None and protocol.complete(data):
                    seen.done_s = now
                    if not protocol.closes:
                        break
            else:
                seen.error = "timeout"
    except ConnectionRefusedError:
        seen.error = "refused"
    except (ConnectionResetError, BrokenPipeError):
        seen.error = "reset"
    except TimeoutError:
        seen.error = "timeout"
    seen.received, seen.complete = len(data), seen.done_s is not None
    return seen


BASELINE_TRIES = 3
BASELINE_WINDOW_S = 2.0


@dataclass
class WireCheck:
    """Traffic to one listener in the protocol of the service behind it, and what it looked like
    before any fault (the baseline a heal must come back to)."""

    host: str
    port: int
    protocol: Protocol
    what: str  # named in errors: "the postgres proxy"
    baseline: Exchange | None = None

    def exchange(self, window_s: float) -> Exchange:
        return exchange(self.host, self.port, window_s, self.protocol)

    def measure_baseline(self) -> Exchange:
        """The fastest whole answer of a few (a busy machine slows single wire checks down, never
        speeds them up); an error when none is whole, since nothing could be compared then."""
        answers = [seen for seen in (self.exchange(BASELINE_WINDOW_S) for _ in range(BASELINE_TRIES))
                   if seen.complete and seen.error is None]
        if not answers:
            raise HarnessError(f"{self.what} does not answer normally before the fault, so its effect "
                               "can't be measured: heal what is already on it (`chaos status`)")
        self.baseline = min(answers, key=lambda seen: seen.end_s or seen.done_s or 0.0)
        return self.baseline

    def normal(self, margin_s: float) -> bool:
        """One wire check answers as the baseline did: whole, no error, no later than margin_s after
        the baseline's answer (and close, where the server closes)."""
        base = self.baseline or self.measure_baseline()
        seen = self.exchange(BASELINE_WINDOW_S + margin_s)
        if not (seen.complete and seen.error is None) or seen.done_s > (base.done_s or 0.0) + margin_s:  # type: ignore[operator]
            return False
        return not self.protocol.closes or (seen.end_s is not None and base.end_s is not None
                                            and seen.end_s <= base.end_s + margin_s)
