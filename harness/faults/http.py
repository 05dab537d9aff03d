"""HTTP faults of the external payment vendor, set through the simulator's control API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from harness.clients import VendorClient
from harness.faults.base import Fault


class StatusParams(BaseModel):
    status: Literal[500, 503, 429] = 503
    retry_after: int | None = Field(default=None, ge=0, le=3600)
    duration_s: float | None = Field(default=None, gt=0, le=3600,
                                     description="the vendor heals itself after this long")


class VendorStatus(Fault):
    """The vendor answers every charge with an error status (the manual's root cause 1)."""

    name = "http.status"
    family = "http"
    description = "payment vendor answers 503/500/429 (optionally with Retry-After) to every charge"
    targets = ("payment_gateway",)
    Params = StatusParams

    @property
    def vendor(self) -> VendorClient:
        return VendorClient(self.stack.endpoint(self.target).url)

    def _apply(self) -> None:
        p = self.params
        self.vendor.set_fault(p.status, p.duration_s, p.retry_after)

    def _undo(self) -> None:
        self.vendor.clear_fault()

    def _landed(self) -> bool:
        # A marked probe charge must get the faulted status back from the vendor itself.
        return self.vendor.probe_charge() == self.params.status
