"""HTTP faults of the external payment vendor, set through the simulator's control API.

Each fault is one ``kind`` of the simulator's FaultSpec (services/shop/payment_gateway.py);
the vendor keeps at most one fault per kind, so faults of different kinds combine and healing
one leaves the others. Landed means a marked charge (never a real charge, never using
up a first_n failure) gets the faulted answer from the vendor itself. Refusals (status, rate,
first_n) answer before the vendor charges, so while one refuses, a fault of the answer
(slow_body, malformed_body) can't be seen, and injecting one then fails to land. The control
API asks for the run's control secret; a reaper reads it from the vendor's container.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, ClassVar, Literal

import httpx
from pydantic import Field

from harness import topology
from harness.errors import HarnessError
from harness.faults.base import Fault, Params, run_container
from harness.view import StackView

CONTROL = "/_control/fault"


def _duration() -> Any:
    return Field(default=None, gt=0, le=3600, description="the vendor heals itself after this long")


def _retry_after(default: int | None = None) -> Any:
    return Field(default=default, ge=0, le=3600, description="seconds, sent as Retry-After")


class StatusParams(Params):
    status: Literal[500, 503, 429] = 503
    retry_after: int | None = _retry_after()
    duration_s: float | None = _duration()


class RateParams(Params):
    per_s: int = Field(default=5, ge=1, le=200, description="charges per second answered normally")
    retry_after: int | None = _retry_after(1)
    duration_s: float | None = _duration()


class FirstNParams(Params):
    count: int = Field(default=3, ge=1, le=10000, description="how many charges fail first")
    status: Literal[500, 503, 429] = 503
    retry_after: int | None = _retry_after()
    duration_s: float | None = _duration()


class DeclineParams(Params):
    amount_cents: int = Field(
        default=4242, ge=0, le=10_000_000, description="charges of exactly this amount are declined"
    )
    duration_s: float | None = _duration()


class SlowBodyParams(Params):
    delay_ms: int = Field(default=5000, ge=10, le=120000,
                          description="answer this late (the shop's payment timeout is 2 s)")
    duration_s: float | None = _duration()


class MalformedParams(Params):
    duration_s: float | None = _duration()


def marked_charge(base_url: str, timeout_s: float = 5.0, amount_cents: int = 0) -> httpx.Response | None:
    """A charge marked X-Chaos-Probe (the vendor keeps it out of its charges) showing what the
    vendor answers now: the effect check of the vendor faults. None when no answer came within
    the timeout."""
    key = "probe-" + uuid.uuid4().hex
    try:
        return httpx.post(f"{base_url}/charges", json={"order_id": key, "amount_cents": amount_cents},
                          headers={"Idempotency-Key": key, "X-Chaos-Probe": "1"}, timeout=timeout_s)
    except httpx.TimeoutException:
        return None


NO_MEMORY = ("created", "exited", "dead", "removing")  # container states whose process holds no faults


def clear(base_url: str, kind: str, secret: str) -> None:
    """Clears one kind of vendor fault; clearing one that is not set is harmless."""
    try:
        httpx.delete(f"{base_url}{CONTROL}", params={"kind": kind}, headers=topology.control_headers(secret),
                     timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise HarnessError(f"the vendor's control API at {base_url} did not clear {kind}: {exc}") from None


def _not_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return True
    return False


def _refused(url: str, p: Any) -> bool:
    seen = marked_charge(url)
    return seen is not None and seen.status_code == p.status


def _declined(url: str, p: Any) -> bool:
    seen = marked_charge(url, amount_cents=p.amount_cents)
    return seen is not None and seen.status_code == 402


def _rate_limited(url: str, p: Any) -> bool:
    """A burst of one more marked charge than the limit must end in 429 (they count, like any caller's)."""
    for _ in range(p.per_s + 1):
        seen = marked_charge(url)
        if seen is not None and seen.status_code == 429 and "retry-after" in seen.headers:
            return True
    return False


def _late(url: str, p: Any) -> bool:
    """No answer within 90% of the delay, where the vendor otherwise answers in milliseconds."""
    began = time.monotonic()
    seen = marked_charge(url, timeout_s=0.9 * p.delay_ms / 1000)
    return seen is None and time.monotonic() - began >= 0.85 * p.delay_ms / 1000


def _garbled(url: str, p: Any) -> bool:
    seen = marked_charge(url)
    return seen is not None and seen.status_code == 200 and _not_json(seen)


# How a marked charge recognises each kind of fault, given the vendor's URL and params.
LANDED: dict[str, Callable[[str, Any], bool]] = {
    "status": _refused,
    "rate": _rate_limited,
    "first_n": _refused,  # marked charges do not use up a failure, so they keep seeing it
    "decline": _declined,
    "slow_body": _late,
    "malformed_body": _garbled,
}


class VendorFault(Fault):
    """One kind of vendor misbehaviour; subclasses say which (the tables above say the rest)."""

    family = "http"
    capability = "vendor"
    proves = "a marked charge to the vendor gets the misbehaviour (its status, 429, a decline, late or garbled)"
    kind: ClassVar[str]

    @property
    def url(self) -> str:
        return self.stack.endpoint(self.target).url

    def _apply(self) -> None:
        spec = {"kind": self.kind, **self.params.model_dump()}
        try:
            httpx.post(f"{self.url}{CONTROL}", json=spec, headers=topology.control_headers(self.stack.control_secret),
                       timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            raise HarnessError(f"the vendor's control API refused {self.name}: {exc}") from None

    def _landed(self) -> bool:
        return LANDED[self.kind](self.url, self.params)

    def undo_state(self) -> dict[str, Any]:
        return {"service": self.target, "kind": self.kind}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """The vendor's address is read now (a restart moves its published port)."""
        service = state.get("service", "payment_gateway")  # records from before they named it
        if run_container(stack, service).status in NO_MEMORY:
            return  # stopped or killed: its faults died with its memory (paused keeps it)
        clear(stack.endpoint(service).url, state["kind"], stack.control_secret)


class VendorStatus(VendorFault):
    """The vendor answers every charge with an error status (the manual's root cause 1)."""

    name = "http.status"
    kind = "status"
    description = "payment vendor answers 503/500/429 (optionally with Retry-After) to every charge"
    Params = StatusParams


class VendorRate(VendorFault):
    name = "http.rate"
    kind = "rate"
    description = "payment vendor answers 429 with Retry-After beyond per_s charges per second"
    Params = RateParams


class VendorFirstN(VendorFault):
    name = "http.first_n"
    kind = "first_n"
    description = "payment vendor fails the first `count` charges with `status`, then recovers"
    Params = FirstNParams


class VendorDecline(VendorFault):
    """One order the vendor keeps refusing while it charges every other: what the settler must
    give up on (to FAILED, stock released, an alert) instead of retrying it for ever."""

    name = "http.decline"
    kind = "decline"
    description = "payment vendor declines (402) every charge of amount_cents, charges the rest"
    Params = DeclineParams


class VendorSlowBody(VendorFault):
    """The duplicate-notification incident's fault: the vendor is slower than the caller's timeout."""

    name = "http.slow_body"
    kind = "slow_body"
    description = "payment vendor charges but answers only after delay_ms (beyond the caller's timeout)"
    Params = SlowBodyParams
    params: SlowBodyParams

    @property
    def landing_timeout_s(self) -> float:  # type: ignore[override]
        return 5.0 + self.params.delay_ms / 1000


class VendorMalformed(VendorFault):
    name = "http.malformed_body"
    kind = "malformed_body"
    description = "payment vendor charges but answers 200 with a body that is not JSON"
    Params = MalformedParams


FAULTS: tuple[type[Fault], ...] = (VendorStatus, VendorRate, VendorFirstN, VendorDecline, VendorSlowBody,
                                   VendorMalformed)
