"""Network faults: Toxiproxy toxics (and a disabled proxy) on the edges of the topology.

Every toxic the harness adds is named ``chaos_<kind>_<stream>``, so healing and the reaper
remove exactly what the harness added and nothing an operator put there by hand. Every proxy's
listener is published on 127.0.0.1, so each fault is proven through the proxy itself: before
applying, a first-byte wire check in the upstream's protocol (harness/faults/wire.py) measures the
baseline; a fault has landed when Toxiproxy lists it and a wire check shows its effect, and is healed
when Toxiproxy no longer lists it and a wire check answers as the baseline did. A toxic a wire check can't
see (on the upstream stream, or too small to tell from the baseline) is proven by the listing.
"""

from __future__ import annotations

import math
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
from harness.faults.wire import PROTOCOLS, Exchange, Protocol, WireCheck, exchange
from harness.view import StackView

__all__ = ["Exchange", "exchange"]  # the wire check's names, as the tests knew them here

PREFIX = "chaos_"
HEAL_MARGIN_S = 0.1  # a healed proxy answers within this of its baseline (less for small effects)
MIN_EFFECT_S = 0.02  # a delay a wire check tells from a busy machine's noise


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


def toxiproxy_api(stack: StackView) -> str:
    """``host:port`` of the stack's Toxiproxy API, as it is published now."""
    endpoint = stack.endpoint("toxiproxy")
    return f"{endpoint.host}:{endpoint.port}"


def no_proxy(proxy: str) -> HarnessError:
    return HarnessError(f"Toxiproxy has no proxy {proxy!r}: is the run's stack running?")


# ---------------------------------------------------------------- parameters

Stream = Literal["upstream", "downstream"]


class ToxicParams(Params):
    stream: Stream = Field(default="downstream", description="which direction is affected")
    toxicity: float = Field(default=1.0, gt=0, le=1, description="share of connections affected")


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
    """How one Toxiproxy toxic is made from a fault's parameters and how a wire check sees it."""

    type: str
    attributes: Callable[[Any], dict[str, int]]
    shows: Callable[[Exchange, Any], bool]  # does this exchange show the toxic's effect?
    window_s: Callable[[Any], float]  # how long the wire check waits for the whole answer
    # Whether a wire check can see it at all, given the parameters, the protocol and the baseline
    # answer (a 1-byte answer shows no bandwidth limit, an answer shorter than the limit no cut).
    visible: Callable[[Any, Protocol, Exchange], bool] = lambda p, proto, base: True
    effect_s: Callable[[Any], float] = lambda p: math.inf  # the delay it adds, if it is one
    upstream_check: bool = False  # the wire check's judgement also holds on the upstream stream


def _delay_visible(seconds: Callable[[Any, Exchange], float]) -> Callable[[Any, Protocol, Exchange], bool]:
    return lambda p, proto, base: seconds(p, base) >= MIN_EFFECT_S


def _bandwidth_s(p: BandwidthParams, answer: Exchange) -> float:
    return answer.received / (p.rate_kb * 1000)


def _slicer_s(p: SlicerParams, answer: Exchange) -> float:
    return (answer.received / p.average_size) * p.delay_us / 1e6


TOXICS: dict[str, Toxic] = {
    "latency": Toxic(
        "latency", lambda p: {"latency": p.latency_ms, "jitter": p.jitter_ms},
        lambda x, p: x.first_byte_s is not None and x.first_byte_s >= 0.9 * (p.latency_ms - p.jitter_ms) / 1000,
        lambda p: (p.latency_ms + p.jitter_ms) / 1000 + 1.0,
        visible=_delay_visible(lambda p, base: (p.latency_ms - p.jitter_ms) / 1000),
        effect_s=lambda p: (p.latency_ms - p.jitter_ms) / 1000, upstream_check=True),
    "timeout": Toxic(
        "timeout", lambda p: {"timeout": p.timeout_ms},
        lambda x, p: x.silent, lambda p: 0.5, upstream_check=True),
    "reset_peer": Toxic(
        "reset_peer", lambda p: {"timeout": p.timeout_ms},
        lambda x, p: x.closed_empty, lambda p: p.timeout_ms / 1000 + 1.0),
    "bandwidth": Toxic(
        "bandwidth", lambda p: {"rate": p.rate_kb},
        lambda x, p: x.complete and (x.done_s or 0) >= 0.7 * _bandwidth_s(p, x),
        lambda p: 2.0 / p.rate_kb + 1.0, visible=_delay_visible(_bandwidth_s)),
    "slow_close": Toxic(
        "slow_close", lambda p: {"delay": p.delay_ms},
        lambda x, p: x.complete and x.end_s is not None and x.end_s >= 0.9 * p.delay_ms / 1000,
        lambda p: p.delay_ms / 1000 + 1.0,
        visible=lambda p, proto, base: proto.closes and p.delay_ms / 1000 >= MIN_EFFECT_S,
        effect_s=lambda p: p.delay_ms / 1000),
    "slicer": Toxic(
        "slicer", lambda p: {"average_size": p.average_size, "size_variation": p.size_variation,
                             "delay": p.delay_us},
        lambda x, p: x.complete and (x.done_s or 0) >= 0.5 * _slicer_s(p, x),
        lambda p: 2000 / p.average_size * p.delay_us / 1e6 + 1.0, visible=_delay_visible(_slicer_s)),
    "limit_data": Toxic(
        "limit_data", lambda p: {"bytes": p.bytes},
        lambda x, p: not x.complete and x.received <= p.bytes and x.error != "timeout", lambda p: 1.0,
        visible=lambda p, proto, base: p.bytes < base.received),
}


def toxic_name(kind: str, stream: str) -> str:
    return f"{PREFIX}{kind}_{stream}"


def check_through(stack: StackView, proxy: str) -> WireCheck:
    """A wire check through a proxy's Toxiproxy listener (every one is published on 127.0.0.1), in
    the protocol of the service behind it."""
    try:
        endpoint = stack.proxy_endpoint(proxy)
    except (HarnessError, KeyError, ValueError) as exc:
        raise HarnessError(f"the {proxy} proxy's listener is not published on 127.0.0.1, so a fault on it "
                           f"can't be proven ({exc}): restart the stack (`chaos down`, `chaos up`)") from None
    system = stack.topology
    protocol = PROTOCOLS[system.services[system.proxies[proxy].upstream].readiness]
    return WireCheck(endpoint.host, endpoint.port, protocol, f"the {proxy} proxy")


def check_sees(kind: str, params: Any, wire_check: WireCheck) -> bool:
    """Whether a wire check can see this toxic: on the stream and protocol it affects, and large
    enough to tell from the baseline. Where it can't, Toxiproxy's listing is the proof."""
    toxic = TOXICS[kind]
    if params.stream == "upstream" and not toxic.upstream_check:
        return False  # the request is small: an upstream limit seldom shows on it
    return toxic.visible(params, wire_check.protocol, wire_check.baseline or wire_check.measure_baseline())


def heal_margin_s(kind: str, params: Any) -> float:
    """How close to the baseline a healed proxy must answer: tighter than the toxic's own delay,
    so a delay still in place is never mistaken for the baseline."""
    return max(MIN_EFFECT_S, min(HEAL_MARGIN_S, 0.5 * TOXICS[kind].effect_s(params)))


def toxic_landed(api: str, proxy: str, name: str, kind: str, params: Any, wire_check: WireCheck) -> bool:
    """Toxiproxy lists the toxic and, where a wire check can see it, one wire check shows it. With
    toxicity below 1 only that share of connections is affected: the landing loop checks
    again until one is (bounded by the landing timeout).

    Shared with the benchmark, so toxics added by other tools are judged the same way.
    """
    if name not in toxic_names(api, proxy):
        return False
    if not check_sees(kind, params, wire_check):
        return True
    toxic = TOXICS[kind]
    return toxic.shows(wire_check.exchange(toxic.window_s(params)), params)


def toxic_gone(api: str, proxy: str, name: str, wire_check: WireCheck, margin_s: float = HEAL_MARGIN_S) -> bool:
    """Not listed any more, and the proxy answers as it did before the fault."""
    return name not in toxic_names(api, proxy) and wire_check.normal(margin_s)


def down_landed(api: str, proxy: str, wire_check: WireCheck) -> bool:
    """Disabled, and a wire check is refused or closed without a byte (Docker's port forwarder
    accepts, then closes when the listener behind it is gone)."""
    return not proxy_enabled(api, proxy) and wire_check.exchange(1.0).closed_empty


def down_gone(api: str, proxy: str, wire_check: WireCheck) -> bool:
    return proxy_enabled(api, proxy) and wire_check.normal(HEAL_MARGIN_S)


# ---------------------------------------------------------------- the faults

class NetworkFault(Fault):
    """Shared by the network faults: where the run's Toxiproxy API and the wire check are."""

    family = "network"

    @classmethod
    def targets_in(cls, system: topology.Topology) -> tuple[str, ...]:
        """Every proxy of the topology; with a capability, the proxies in front of the services
        that declare it (that cut the edge to a service the scenarios know by its role)."""
        if cls.capability is None:
            return tuple(system.proxies)
        cooperating = set(system.with_capability(cls.capability))
        return tuple(name for name, proxy in system.proxies.items() if proxy.upstream in cooperating)

    @property
    def api(self) -> str:
        return toxiproxy_api(self.stack)

    def _prepare(self) -> None:
        """The proxy's baseline answer, before anything is applied: what landing is told from
        and what healing must come back to."""
        self.wire_check = check_through(self.stack, self.target)
        self.wire_check.measure_baseline()


class ToxicFault(NetworkFault):
    """A Toxiproxy toxic named chaos_<kind>_<stream> on the target proxy."""

    kind: ClassVar[str]
    params: ToxicParams

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
        return toxic_landed(self.api, self.target, self.toxic, self.kind, self.params, self.wire_check)

    def _healed(self) -> bool:
        return toxic_gone(self.api, self.target, self.toxic, self.wire_check, heal_margin_s(self.kind, self.params))

    def undo_state(self) -> dict[str, Any]:
        return {"proxy": self.target, "toxic": self.toxic}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        remove_toxic(toxiproxy_api(stack), state["proxy"], state["toxic"])


class Latency(ToxicFault):
    name = "network.latency"
    kind = "latency"
    description = "adds latency_ms (± jitter_ms) to the data through a proxy"
    proves = ("a wire check through the proxy, in the upstream's protocol, gets its first byte latency_ms late; "
              "heal: back near the baseline measured before")
    Params = LatencyParams


class Timeout(ToxicFault):
    name = "network.timeout"
    kind = "timeout"
    description = "stops all data through a proxy; closes the connection after timeout_ms (0: never)"
    proves = ("a wire check through the proxy gets no byte back within its window; heal: back near the baseline "
              "measured before")
    Params = TimeoutParams


class ResetPeer(ToxicFault):
    name = "network.reset_peer"
    kind = "reset_peer"
    description = "resets connections (TCP RST) after timeout_ms"
    proves = ("a wire check through the proxy is reset or closed without a byte (upstream stream: Toxiproxy's "
              "listing); heal: baseline again")
    Params = TimeoutParams


class Bandwidth(ToxicFault):
    name = "network.bandwidth"
    kind = "bandwidth"
    description = "limits a proxy's throughput to rate_kb KB/s"
    proves = ("a wire check's answer through the proxy comes no faster than rate_kb allows (too small an answer, or "
              "upstream: the listing); heal: baseline again")
    Params = BandwidthParams


class SlowClose(ToxicFault):
    name = "network.slow_close"
    kind = "slow_close"
    description = "delays closing connections by delay_ms"
    proves = ("an HTTP wire check through the proxy sees the close delay_ms late (Postgres and AMQP don't close, "
              "upstream: the listing); heal: baseline again")
    Params = SlowCloseParams


class Slicer(ToxicFault):
    name = "network.slicer"
    kind = "slicer"
    description = "slices data into small pieces with delay_us between them"
    proves = ("a wire check's answer through the proxy comes sliced and slowed by delay_us a piece (too small an "
              "answer, or upstream: the listing); heal: baseline again")
    Params = SlicerParams


class LimitData(ToxicFault):
    name = "network.limit_data"
    kind = "limit_data"
    description = "closes each connection after `bytes` bytes"
    proves = ("a wire check's answer through the proxy is cut after `bytes` (an answer shorter than that, or "
              "upstream: the listing); heal: baseline again")
    Params = LimitDataParams


class Down(NetworkFault):
    """The proxy is disabled: its dependency is unreachable (connections refused)."""

    name = "network.down"
    proves = ("a wire check through the proxy's listener is refused or closed without a byte; heal: a wire check "
              "answers as the baseline did")
    description = "disables a proxy: the dependency behind it is unreachable"
    Params = DownParams

    def _apply(self) -> None:
        try:
            set_enabled(self.api, self.target, False)
        except NotFound:
            raise no_proxy(self.target) from None

    def _landed(self) -> bool:
        return down_landed(self.api, self.target, self.wire_check)

    def _healed(self) -> bool:
        return down_gone(self.api, self.target, self.wire_check)

    def undo_state(self) -> dict[str, Any]:
        return {"proxy": self.target}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        try:
            set_enabled(toxiproxy_api(stack), state["proxy"], True)
        except NotFound:
            pass  # no proxy: nothing to enable


FAULTS: tuple[type[Fault], ...] = (Latency, Down, Timeout, ResetPeer, Bandwidth, SlowClose, Slicer, LimitData)
