"""Network faults: Toxiproxy toxics (and a disabled proxy) on the edges of the topology.

Every toxic the harness adds is named ``chaos_<kind>_<stream>``, so healing and the reaper
remove exactly what the harness added and nothing an operator put there by hand. A fault has
landed when Toxiproxy lists it and, where the proxy is published to the harness (the client
edge), when a raw HTTP exchange through the proxy shows its effect; internal edges have no
cheap probe from the host, so there the listing is the proof.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

from pydantic import Field, field_validator
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists
from toxiproxy.proxy import Proxy

from harness import topology
from harness.errors import HarnessError
from harness.faults.base import Fault, Params

PREFIX = "chaos_"
PROBE_REQUEST = b"GET /health HTTP/1.1\r\nHost: chaos-probe\r\nX-Chaos-Probe: 1\r\nConnection: close\r\n\r\n"


# ---------------------------------------------------------------- Toxiproxy access

def toxiproxy_at(api: str) -> Toxiproxy:
    """A client for the Toxiproxy API at ``host:port``.

    The library keeps its address in a class attribute shared by every client in the process,
    so each use points it again at the run's own Toxiproxy (two stacks in one process, as in
    the fragile proof, would otherwise talk to each other's proxies).
    """
    host, _, port = api.rpartition(":")
    client = Toxiproxy()
    client.update_api_consumer(host, int(port))
    return client


def proxy_at(api: str, name: str) -> Proxy:
    """A handle on a proxy by name: the library's calls on a proxy need nothing else, so no
    listing of every proxy is fetched first (a missing proxy answers 404: NotFound)."""
    toxiproxy_at(api)
    return Proxy(name=name, upstream="", enabled=True, listen="")


def toxic_names(api: str, proxy: str) -> set[str]:
    try:
        return set(proxy_at(api, proxy).toxics())
    except NotFound:
        return set()


def remove_toxic(api: str, proxy: str, toxic: str) -> None:
    """Removes one toxic; one already gone (healed twice, reaped) is not an error."""
    try:
        proxy_at(api, proxy).destroy_toxic(toxic)
    except NotFound:
        pass


def set_enabled(api: str, proxy: str, enabled: bool) -> None:
    handle = proxy_at(api, proxy)
    if enabled:
        handle.enable()
    else:
        handle.disable()


def proxy_enabled(api: str, proxy: str) -> bool:
    toxiproxy_at(api)
    try:
        return bool(APIConsumer.get(f"/proxies/{proxy}").json()["enabled"])
    except NotFound:
        return True  # no proxy, nothing disabled


def no_proxy(proxy: str) -> HarnessError:
    return HarnessError(f"Toxiproxy has no proxy {proxy!r}: is the run's stack running?")


# ---------------------------------------------------------------- the probe through a proxy

@dataclass
class Exchange:
    """What one raw HTTP/1.1 request through a proxy saw, timed from the connect."""

    received: int = 0
    reads: int = 0
    first_byte_s: float | None = None
    end_s: float | None = None  # when the peer closed (EOF)
    error: str | None = None  # refused | reset | timeout
    complete: bool = False  # the whole response, body by Content-Length, arrived

    @property
    def silent(self) -> bool:
        """Nothing came back, though the connection was accepted."""
        return self.received == 0 and self.error != "refused"


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        return False
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return len(body) >= int(value.strip() or 0)
    return True


def exchange(host: str, port: int, window_s: float) -> Exchange:
    """GET /health through the proxy with a raw socket, reading until EOF or the window ends.

    Raw, because the effects live below HTTP: when bytes arrive, in how many reads, whether
    and when the peer closes or resets, which an HTTP client hides.
    """
    started = time.monotonic()
    deadline = started + window_s
    seen = Exchange()
    data = b""
    try:
        with socket.create_connection((host, port), timeout=window_s) as sock:
            sock.sendall(PROBE_REQUEST)
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
            else:
                seen.error = "timeout"
    except ConnectionRefusedError:
        seen.error = "refused"
    except (ConnectionResetError, BrokenPipeError):
        seen.error = "reset"
    except TimeoutError:
        seen.error = "timeout"
    seen.received, seen.complete = len(data), _complete(data)
    return seen


def answers_normally(host: str, port: int) -> bool:
    """The proxy passes a whole response and closes promptly: no effect of any toxic left."""
    seen = exchange(host, port, 1.0)
    return seen.complete and seen.error is None


# ---------------------------------------------------------------- parameters

Stream = Literal["upstream", "downstream"]


class ToxicParams(Params):
    stream: Stream = Field(default="downstream", description="which direction is affected")
    toxicity: float = Field(default=1.0, ge=0, le=1, description="share of connections affected")


class LatencyParams(ToxicParams):
    latency_ms: int = Field(default=1000, ge=0, le=60000)
    jitter_ms: int = Field(default=0, ge=0, le=60000)


class TimeoutParams(ToxicParams):
    timeout_ms: int = Field(default=0, ge=0, le=600000, description="0: hold the data until healed")


class BandwidthParams(ToxicParams):
    rate_kb: int = Field(default=10, ge=1, le=1000000, description="KB per second")


class SlowCloseParams(ToxicParams):
    delay_ms: int = Field(default=1000, ge=0, le=600000)


class SlicerParams(ToxicParams):
    average_size: int = Field(default=64, ge=1, le=65536)
    size_variation: int = Field(default=32, ge=0, le=65535)
    delay_us: int = Field(default=1000, ge=0, le=1000000)

    @field_validator("size_variation")
    @classmethod
    def _below_average(cls, value: int, info: Any) -> int:
        average = info.data.get("average_size")
        if average is not None and value >= average:
            raise ValueError(f"must be smaller than average_size ({average})")
        return value


class LimitDataParams(ToxicParams):
    bytes: int = Field(default=1024, ge=1, le=1 << 30, description="close the connection after this many")


class DownParams(Params):
    pass


# ---------------------------------------------------------------- the toxics, as a table

@dataclass(frozen=True)
class Toxic:
    """How one Toxiproxy toxic is made from a fault's parameters and how a probe sees it."""

    type: str
    attributes: Callable[[Any], dict[str, int]]
    shows: Callable[[Exchange, Any], bool]  # does this exchange show the toxic's effect?
    window_s: Callable[[Any], float]  # how long the probe waits for the whole answer
    upstream_probe: bool = False  # the probe's judgement also holds on the upstream stream


TOXICS: dict[str, Toxic] = {
    "latency": Toxic(
        "latency", lambda p: {"latency": p.latency_ms, "jitter": p.jitter_ms},
        lambda x, p: x.first_byte_s is not None and x.first_byte_s >= 0.9 * (p.latency_ms - p.jitter_ms) / 1000,
        lambda p: (p.latency_ms + p.jitter_ms) / 1000 + 1.0, upstream_probe=True),
    "timeout": Toxic(
        "timeout", lambda p: {"timeout": p.timeout_ms},
        lambda x, p: x.silent, lambda p: 0.5, upstream_probe=True),
    "reset_peer": Toxic(
        "reset_peer", lambda p: {"timeout": p.timeout_ms},
        lambda x, p: x.silent and x.error != "timeout", lambda p: p.timeout_ms / 1000 + 1.0),
    "bandwidth": Toxic(
        "bandwidth", lambda p: {"rate": p.rate_kb},
        lambda x, p: x.complete and (x.end_s or 0) >= 0.7 * x.received / (p.rate_kb * 1000),
        lambda p: 2.0 / p.rate_kb + 1.0),
    "slow_close": Toxic(
        "slow_close", lambda p: {"delay": p.delay_ms},
        lambda x, p: x.complete and x.end_s is not None and x.end_s >= 0.9 * p.delay_ms / 1000,
        lambda p: p.delay_ms / 1000 + 1.0),
    "slicer": Toxic(
        "slicer", lambda p: {"average_size": p.average_size, "size_variation": p.size_variation,
                             "delay": p.delay_us},
        lambda x, p: x.complete and (x.end_s or 0) >= 0.5 * (x.received / p.average_size) * p.delay_us / 1e6,
        lambda p: 2000 / p.average_size * p.delay_us / 1e6 + 1.0),
    "limit_data": Toxic(
        "limit_data", lambda p: {"bytes": p.bytes},
        lambda x, p: x.received <= p.bytes and x.error is None, lambda p: 1.0),
}


def toxic_name(kind: str, stream: str) -> str:
    return f"{PREFIX}{kind}_{stream}"


def probe_endpoint(stack: Any, proxy: str) -> tuple[str, int] | None:
    """Where the harness can send traffic through a proxy: published ones only."""
    if not topology.PROXIES[proxy].published:
        return None
    endpoint = stack.proxy_endpoint(proxy)
    return endpoint.host, endpoint.port


def toxic_landed(api: str, proxy: str, name: str, kind: str, params: Any,
                 probe: tuple[str, int] | None) -> bool:
    """Toxiproxy lists the toxic and, where a probe applies, the traffic shows it.

    Shared with the benchmark, so toxics added by other tools are judged the same way.
    """
    if name not in toxic_names(api, proxy):
        return False
    toxic = TOXICS[kind]
    if probe is None or params.toxicity < 1 or (params.stream == "upstream" and not toxic.upstream_probe):
        return True  # a probe would see the effect only sometimes, or not at all
    return toxic.shows(exchange(*probe, toxic.window_s(params)), params)


def toxic_gone(api: str, proxy: str, name: str, probe: tuple[str, int] | None) -> bool:
    return name not in toxic_names(api, proxy) and (probe is None or answers_normally(*probe))


def down_landed(api: str, proxy: str, probe: tuple[str, int] | None) -> bool:
    if proxy_enabled(api, proxy):
        return False
    if probe is None:
        return True
    seen = exchange(*probe, 1.0)
    return seen.received == 0 and seen.error != "timeout"  # refused, or accepted and closed at once


def down_gone(api: str, proxy: str, probe: tuple[str, int] | None) -> bool:
    return proxy_enabled(api, proxy) and (probe is None or answers_normally(*probe))


# ---------------------------------------------------------------- the faults

PROXY_TARGETS = tuple(topology.PROXIES)


class NetworkFault(Fault):
    """Shared by the network faults: where the run's Toxiproxy API and the probe are."""

    family = "network"
    targets = PROXY_TARGETS

    @property
    def api(self) -> str:
        endpoint = self.stack.endpoint("toxiproxy")
        return f"{endpoint.host}:{endpoint.port}"

    @property
    def probe(self) -> tuple[str, int] | None:
        return probe_endpoint(self.stack, self.target)


class ToxicFault(NetworkFault):
    """A Toxiproxy toxic named chaos_<kind>_<stream> on the target proxy."""

    kind: ClassVar[str]

    @property
    def toxic(self) -> str:
        return toxic_name(self.kind, self.params.stream)

    @property
    def landing_timeout_s(self) -> float:  # type: ignore[override]
        return 5.0 + 2 * TOXICS[self.kind].window_s(self.params)

    def _apply(self) -> None:
        toxic = TOXICS[self.kind]
        try:
            proxy_at(self.api, self.target).add_toxic(
                name=self.toxic, type=toxic.type, stream=self.params.stream,
                toxicity=self.params.toxicity, attributes=toxic.attributes(self.params))
        except NotFound:
            raise no_proxy(self.target) from None
        except ProxyExists:  # the library's name for HTTP 409
            raise HarnessError(f"{self.name} ({self.params.stream}) is already active on {self.target}: "
                               "heal it first (`chaos heal`)") from None

    def _landed(self) -> bool:
        return toxic_landed(self.api, self.target, self.toxic, self.kind, self.params, self.probe)

    def undo_state(self) -> dict[str, Any]:
        return {"api": self.api, "proxy": self.target, "toxic": self.toxic}

    @classmethod
    def undo_from(cls, state: dict[str, Any]) -> None:
        remove_toxic(state["api"], state["proxy"], state["toxic"])


class Latency(ToxicFault):
    name = "network.latency"
    kind = "latency"
    description = "adds latency_ms (± jitter_ms) to the data through a proxy"
    Params = LatencyParams


class Timeout(ToxicFault):
    name = "network.timeout"
    kind = "timeout"
    description = "stops all data through a proxy; closes the connection after timeout_ms (0: never)"
    Params = TimeoutParams


class ResetPeer(ToxicFault):
    name = "network.reset_peer"
    kind = "reset_peer"
    description = "resets connections (TCP RST) after timeout_ms"
    Params = TimeoutParams


class Bandwidth(ToxicFault):
    name = "network.bandwidth"
    kind = "bandwidth"
    description = "limits a proxy's throughput to rate_kb KB/s"
    Params = BandwidthParams


class SlowClose(ToxicFault):
    name = "network.slow_close"
    kind = "slow_close"
    description = "delays closing connections by delay_ms"
    Params = SlowCloseParams


class Slicer(ToxicFault):
    name = "network.slicer"
    kind = "slicer"
    description = "slices data into small pieces with delay_us between them"
    Params = SlicerParams


class LimitData(ToxicFault):
    name = "network.limit_data"
    kind = "limit_data"
    description = "closes each connection after `bytes` bytes"
    Params = LimitDataParams


class Down(NetworkFault):
    """The proxy is disabled: its dependency is unreachable (connections refused)."""

    name = "network.down"
    description = "disables a proxy: the dependency behind it is unreachable"
    Params = DownParams

    def _apply(self) -> None:
        try:
            set_enabled(self.api, self.target, False)
        except NotFound:
            raise no_proxy(self.target) from None

    def _landed(self) -> bool:
        return down_landed(self.api, self.target, self.probe)

    def undo_state(self) -> dict[str, Any]:
        return {"api": self.api, "proxy": self.target}

    @classmethod
    def undo_from(cls, state: dict[str, Any]) -> None:
        try:
            set_enabled(state["api"], state["proxy"], True)
        except NotFound:
            pass  # no proxy: nothing to enable


FAULTS: tuple[type[Fault], ...] = (Latency, Down, Timeout, ResetPeer, Bandwidth, SlowClose, Slicer, LimitData)
