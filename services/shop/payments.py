"""Calls to the payment vendors: retries with backoff, each call inside its vendor's circuit
breaker, none before that vendor's Retry-After has passed.

The order id is the idempotency key of every call, so a retry or a later settlement can never
charge twice: the vendor answers a repeat with the charge it already made. A 429 (or 503) with
Retry-After holds every caller of that vendor, the request's retries and the settler alike, until
it has passed (shop.retry_after); a request whose wait would outlast its own retries gives up at
once and the order is left to the settler. Each of those is a protection of its own
(shop.protections), read at every call.

Two vendors (multi-vendor, protection vendor_failover): every charge goes to the primary; while
its breaker is open it goes to the secondary instead, and once the primary's breaker lets a call
through again, to the primary. Idempotency holds at one vendor only, so an order is pinned
(Route) to the vendor a call of it may have reached: from the moment the call is sent until that
vendor answers that it did not charge (an error status) or the connection was never made. A
pinned order is only ever charged at its vendor; it waits (PAYMENT_PENDING) while that one is down.
The pin is stored (Route.store, the order's row) before the call goes out: a gateway that dies
with a call out leaves the order pinned, so neither the settler nor the customer's retry asks
the other vendor for a charge the first may have made.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
    wait_none,
)

from shop import retry_after
from shop.logs import PAYMENT_503
from shop.protections import on
from shop.settings import GatewaySettings


class VendorError(Exception):
    """The vendor answered with an error status or could not be reached."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status

    @property
    def refused(self) -> bool:
        """The vendor answered and said no to this charge (a 4xx other than a rate limit): the
        vendor is up, so this must not open the breaker on everyone else's orders."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


class RateLimited(VendorError):
    """The vendor was not called: its Retry-After has not passed (or a trial call is on its way)."""

    def __init__(self, held: retry_after.Held) -> None:
        super().__init__(429, str(held))
        self.remaining_s = held.remaining_s


PRIMARY, SECONDARY = "primary", "secondary"
# The breaker of each vendor; the primary's keeps the name the logs and the health report use.
BREAKER = {PRIMARY: "payment", SECONDARY: "payment_b"}
# Failures after which the request was surely never sent: the vendor cannot have charged.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass
class Route:
    """Which vendor an order belongs to: None (either may take it) or the one a call of it may
    have reached (it may have charged there, so no other vendor may be asked)."""

    pinned: str | None = None
    # The primary's open breaker sent this request to the secondary: its retries stay there, so a
    # request's retries never add calls to a half-open primary (purgatory lets them all through).
    failed_over: bool = False
    # Writes a new pin where a crash of the gateway can't lose it (None: kept in memory only).
    store: Callable[[str | None], Awaitable[None]] | None = None

    async def pin(self, vendor: str | None) -> None:
        """Moves the pin, stored first: a store that fails raises, and the call is not made."""
        if vendor != self.pinned and self.store is not None:
            await self.store(vendor)
        self.pinned = vendor

    async def unpin(self, back_to: str | None) -> None:
        """Gives back a pin the vendor surely did not need (it made no charge). A store that fails
        here keeps the pin, which is safe: the order only waits for a vendor that did not charge."""
        try:
            await self.pin(back_to)
        except Exception:  # noqa: BLE001 - any failure keeps the stored pin, as documented
            pass


class Payments:
    def __init__(self, settings: GatewaySettings, vendors: dict[str, httpx.AsyncClient], log, on_call) -> None:
        """vendors: PRIMARY's client, and SECONDARY's when a second vendor is configured."""
        self.settings, self.vendors, self.log, self.on_call = settings, vendors, log, on_call
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_threshold, default_ttl=settings.breaker_reset_s,
            exclude=[(VendorError, lambda exc: exc.refused)])
        # Each vendor's Retry-After, for every caller of it.
        self.gates = {vendor: retry_after.Gate() for vendor in vendors}

    def admitted(self, vendor: str) -> tuple[bool, bool]:
        """Whether the vendor's Retry-After is honoured for the call about to be made, and
        whether that call is the trial after it; RateLimited (the vendor not called) while its
        gate holds calls back."""
        if not on("retry_after"):
            return False, False
        try:
            return True, self.gates[vendor].admit()
        except retry_after.Held as held:  # not a call: the calls metric does not count it
            raise RateLimited(held) from None

    async def call(self, vendor: str, order_id: str, amount_cents: int, route: Route, honour: bool,
                   trial: bool) -> str:
        """One charge request to one vendor (admitted: see `admitted`); returns its charge id.
        The order is pinned to the vendor while the call is out, and stays pinned unless the
        vendor surely did not charge. The answer, or the lack of one, is told to the vendor's
        gate when honoured, so a trial always ends."""
        gate = self.gates[vendor]
        before = route.pinned
        await route.pin(vendor)
        try:
            response = await self.post(vendor, order_id, amount_cents)
        except BaseException as exc:
            if isinstance(exc, VendorError) and isinstance(exc.__cause__, NOT_SENT):
                await route.unpin(before)
            if honour:
                gate.failed(trial)
            raise
        if honour:
            gate.answered(response.status_code, retry_after.parse(
                response.headers.get("Retry-After"), time.time(), self.settings.retry_after_max_s), trial)
        if response.status_code >= 400:
            await route.unpin(before)  # an error status: this vendor made no charge
        return self.answer(vendor, order_id, response)

    async def post(self, vendor: str, order_id: str, amount_cents: int) -> httpx.Response:
        key = order_id if on("vendor_idempotency") else uuid.uuid4().hex  # off: every call a new charge
        try:
            return await self.vendors[vendor].post(
                "/charges", json={"order_id": order_id, "amount_cents": amount_cents},
                headers={"Idempotency-Key": key},
                timeout=self.settings.payment_timeout_s if on("call_timeouts") else None)
        except httpx.HTTPError as exc:
            self.on_call("unreachable")
            raise VendorError(None, f"vendor unreachable: {type(exc).__name__}") from exc

    def answer(self, vendor: str, order_id: str, response: httpx.Response) -> str:
        """The vendor's answer: its charge id, or VendorError (the manual's line for a 503)."""
        if response.status_code == 429:
            self.log.warning("payment_rate_limited", order_id=order_id, vendor=vendor,
                             retry_after=response.headers.get("Retry-After"))
        if response.status_code == 503:
            self.log.error(PAYMENT_503, kind="payment_vendor_unavailable", order_id=order_id, vendor=vendor,
                           retry_after=response.headers.get("Retry-After"))
        if response.status_code >= 400:
            self.on_call(str(response.status_code))
            raise VendorError(response.status_code, f"vendor answered {response.status_code}")
        self.on_call("ok")
        return response.json()["charge_id"]

    async def through(self, vendor: str, order_id: str, amount_cents: int, route: Route) -> str:
        """One call to a vendor through its circuit breaker (raises OpenedState while it is open).
        A call the vendor's Retry-After holds back is no failure of the vendor's: the breaker
        never sees it."""
        honour, trial = self.admitted(vendor)
        if not on("breaker"):
            return await self.call(vendor, order_id, amount_cents, route, honour, trial)
        try:
            breaker = await self.breakers.get_breaker(BREAKER[vendor])
            async with breaker:
                return await self.call(vendor, order_id, amount_cents, route, honour, trial)
        except OpenedState:
            if honour:
                self.gates[vendor].failed(trial)  # the breaker kept the trial from the vendor
            raise

    def failover(self, route: Route) -> bool:
        """Whether a call the primary's open breaker stopped goes to the secondary instead."""
        return SECONDARY in self.vendors and route.pinned is None and on("vendor_failover")

    async def guarded(self, order_id: str, amount_cents: int, route: Route, may_fail_over: bool = True) -> str:
        """One call: to the order's pinned vendor, else to the primary, else (its breaker open and
        `may_fail_over`) to the secondary. Raises OpenedState when the breaker of every vendor it
        may use is open."""
        if route.pinned is not None and on("vendor_failover"):
            return await self.through(route.pinned, order_id, amount_cents, route)
        if not (route.failed_over and self.failover(route)):
            try:
                return await self.through(PRIMARY, order_id, amount_cents, route)
            except OpenedState:
                if not (may_fail_over and self.failover(route)):
                    raise
            route.failed_over = True
        return await self.through(SECONDARY, order_id, amount_cents, route)

    def next_vendor(self, route: Route) -> str:
        """The vendor the request's next call goes to, whose Retry-After its retry waits for."""
        if route.pinned is not None:
            return route.pinned
        return SECONDARY if route.failed_over and self.failover(route) else PRIMARY

    async def charge(self, order_id: str, amount_cents: int, route: Route) -> str:
        """The request's charge: vendor errors retried with exponential backoff and jitter, each
        retry no sooner than its vendor's Retry-After; an open breaker ends it at once, and so
        does a Retry-After longer than the request's longest backoff (the settler charges it).
        `route` says, afterwards, which vendor the order is pinned to."""
        s = self.settings
        backoff = (wait_exponential_jitter(initial=s.retry_initial_s, max=s.retry_max_s, jitter=s.retry_jitter_s)
                   if on("backoff") else wait_none())

        def held_s() -> float:
            return self.gates[self.next_vendor(route)].remaining() if on("retry_after") else 0.0

        def wait(state: RetryCallState) -> float:
            return max(backoff(state), held_s())

        def too_long(state: RetryCallState) -> bool:
            return held_s() > s.retry_max_s

        retrying = AsyncRetrying(
            stop=stop_after_attempt(s.retry_attempts if on("retry") else 1) | too_long,
            wait=wait,
            retry=retry_if_exception_type(VendorError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.guarded(order_id, amount_cents, route)
        raise AssertionError("unreachable: tenacity reraises")
