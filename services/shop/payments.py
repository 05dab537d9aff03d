"""Calls to the payment vendor: retries with backoff, each call inside a circuit breaker.

The order id is the idempotency key of every call, so a retry or a later settlement can never
charge twice: the vendor answers a repeat with the charge it already made. Each of those is a
protection of its own (shop.protections), read at every call.
"""

from __future__ import annotations

import uuid

import httpx
from purgatory import AsyncCircuitBreakerFactory
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter, wait_none

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


class Payments:
    def __init__(self, settings: GatewaySettings, http: httpx.AsyncClient, log, on_call) -> None:
        self.settings, self.http, self.log, self.on_call = settings, http, log, on_call
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_threshold, default_ttl=settings.breaker_reset_s,
            exclude=[(VendorError, lambda exc: exc.refused)])

    async def call(self, order_id: str, amount_cents: int) -> str:
        """One charge request; returns the vendor's charge id."""
        key = order_id if on("vendor_idempotency") else uuid.uuid4().hex  # off: every call a new charge
        try:
            response = await self.http.post(
                "/charges", json={"order_id": order_id, "amount_cents": amount_cents},
                headers={"Idempotency-Key": key},
                timeout=self.settings.payment_timeout_s if on("call_timeouts") else None)
        except httpx.HTTPError as exc:
            self.on_call("unreachable")
            raise VendorError(None, f"vendor unreachable: {type(exc).__name__}") from exc
        if response.status_code == 503:
            self.log.error(PAYMENT_503, kind="payment_vendor_unavailable", order_id=order_id,
                           retry_after=response.headers.get("Retry-After"))
        if response.status_code >= 400:
            self.on_call(str(response.status_code))
            raise VendorError(response.status_code, f"vendor answered {response.status_code}")
        self.on_call("ok")
        return response.json()["charge_id"]

    async def guarded(self, order_id: str, amount_cents: int) -> str:
        """One call through the circuit breaker (raises OpenedState while it is open)."""
        if not on("breaker"):
            return await self.call(order_id, amount_cents)
        breaker = await self.breakers.get_breaker("payment")
        async with breaker:
            return await self.call(order_id, amount_cents)

    async def charge(self, order_id: str, amount_cents: int) -> str:
        """The request's charge: vendor errors retried with exponential backoff and jitter; an
        open breaker ends it at once."""
        s = self.settings
        wait = (wait_exponential_jitter(initial=s.retry_initial_s, max=s.retry_max_s, jitter=s.retry_jitter_s)
                if on("backoff") else wait_none())
        retrying = AsyncRetrying(
            stop=stop_after_attempt(s.retry_attempts if on("retry") else 1),
            wait=wait,
            retry=retry_if_exception_type(VendorError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.guarded(order_id, amount_cents)
        raise AssertionError("unreachable: tenacity reraises")
