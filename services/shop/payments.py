"""Calls to the payment vendor: retries with backoff, each call inside a circuit breaker, none
before the vendor's Retry-After has passed.

The order id is the idempotency key of every call, so a retry or a later settlement can never
charge twice: the vendor answers a repeat with the charge it already made. A 429 (or 503) with
Retry-After holds every caller of the vendor, the request's retries and the settler alike, until
it has passed (shop.retry_after); a request whose wait would outlast its own retries gives up at
once and the order is left to the settler. Each of those is a protection of its own
(shop.protections), read at every call.
"""

from __future__ import annotations

import time
import uuid

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


class Payments:
    def __init__(self, settings: GatewaySettings, http: httpx.AsyncClient, log, on_call) -> None:
        self.settings, self.http, self.log, self.on_call = settings, http, log, on_call
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_threshold, default_ttl=settings.breaker_reset_s,
            exclude=[(VendorError, lambda exc: exc.refused)])
        self.gate = retry_after.Gate()  # this vendor's Retry-After, for every caller of this client

    def admitted(self) -> tuple[bool, bool]:
        """Whether the vendor's Retry-After is honoured for the call about to be made, and
        whether that call is the trial after it; RateLimited (the vendor not called) while the
        gate holds calls back."""
        if not on("retry_after"):
            return False, False
        try:
            return True, self.gate.admit()
        except retry_after.Held as held:  # not a call: the calls metric does not count it
            raise RateLimited(held) from None

    async def call(self, order_id: str, amount_cents: int, honour: bool, trial: bool) -> str:
        """One charge request (admitted: see `admitted`); returns the vendor's charge id. Its
        answer, or the lack of one, is told to the gate when honoured, so a trial always ends."""
        try:
            response = await self.post(order_id, amount_cents)
        except BaseException:
            if honour:
                self.gate.failed(trial)
            raise
        if honour:
            self.gate.answered(response.status_code, retry_after.parse(
                response.headers.get("Retry-After"), time.time(), self.settings.retry_after_max_s), trial)
        return self.answer(order_id, response)

    async def post(self, order_id: str, amount_cents: int) -> httpx.Response:
        key = order_id if on("vendor_idempotency") else uuid.uuid4().hex  # off: every call a new charge
        try:
            return await self.http.post(
                "/charges", json={"order_id": order_id, "amount_cents": amount_cents},
                headers={"Idempotency-Key": key},
                timeout=self.settings.payment_timeout_s if on("call_timeouts") else None)
        except httpx.HTTPError as exc:
            self.on_call("unreachable")
            raise VendorError(None, f"vendor unreachable: {type(exc).__name__}") from exc

    def answer(self, order_id: str, response: httpx.Response) -> str:
        """The vendor's answer: its charge id, or VendorError (the manual's line for a 503)."""
        if response.status_code == 429:
            self.log.warning("payment_rate_limited", order_id=order_id,
                             retry_after=response.headers.get("Retry-After"))
        if response.status_code == 503:
            self.log.error(PAYMENT_503, kind="payment_vendor_unavailable", order_id=order_id,
                           retry_after=response.headers.get("Retry-After"))
        if response.status_code >= 400:
            self.on_call(str(response.status_code))
            raise VendorError(response.status_code, f"vendor answered {response.status_code}")
        self.on_call("ok")
        return response.json()["charge_id"]

    async def guarded(self, order_id: str, amount_cents: int) -> str:
        """One call through the circuit breaker (raises OpenedState while it is open). A call
        the vendor's Retry-After holds back is no failure of the vendor's: the breaker never
        sees it."""
        honour, trial = self.admitted()
        if not on("breaker"):
            return await self.call(order_id, amount_cents, honour, trial)
        try:
            breaker = await self.breakers.get_breaker("payment")
            async with breaker:
                return await self.call(order_id, amount_cents, honour, trial)
        except OpenedState:
            if honour:
                self.gate.failed(trial)  # the breaker kept the trial from the vendor
            raise

    async def charge(self, order_id: str, amount_cents: int) -> str:
        """The request's charge: vendor errors retried with exponential backoff and jitter, each
        retry no sooner than the vendor's Retry-After; an open breaker ends it at once, and so
        does a Retry-After longer than the request's longest backoff (the settler charges it)."""
        s = self.settings
        backoff = (wait_exponential_jitter(initial=s.retry_initial_s, max=s.retry_max_s, jitter=s.retry_jitter_s)
                   if on("backoff") else wait_none())

        def wait(state: RetryCallState) -> float:
            return max(backoff(state), self.gate.remaining() if on("retry_after") else 0.0)

        def too_long(state: RetryCallState) -> bool:
            return on("retry_after") and self.gate.remaining() > s.retry_max_s

        retrying = AsyncRetrying(
            stop=stop_after_attempt(s.retry_attempts if on("retry") else 1) | too_long,
            wait=wait,
            retry=retry_if_exception_type(VendorError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.guarded(order_id, amount_cents)
        raise AssertionError("unreachable: tenacity reraises")
