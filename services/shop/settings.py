"""Service settings from the environment, validated once at start-up."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field


class GatewaySettings(BaseModel):
    """api_gateway's knobs; the defaults are the resilient shop's production values."""

    sut_mode: Literal["resilient", "fragile"] = "resilient"
    database_url: str
    payment_url: str
    # The second vendor (multi-vendor): charged only while the primary's breaker is open.
    payment_b_url: str | None = None
    retry_attempts: int = Field(default=4, ge=1, le=10)
    retry_initial_s: float = Field(default=0.1, gt=0)
    retry_max_s: float = Field(default=1.0, gt=0)
    retry_jitter_s: float = Field(default=0.05, ge=0)
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=2.0, gt=0)
    payment_timeout_s: float = Field(default=2.0, gt=0)
    # The longest a vendor's Retry-After is honoured before the next (trial) call.
    retry_after_max_s: float = Field(default=60.0, gt=0, le=3600)
    settle_interval_s: float = Field(default=0.25, gt=0)
    # An order being worked on by a request is leased to it; past the lease (the request died,
    # or could not write its outcome) the settler or a client retry takes the order over.
    order_lease_s: float = Field(default=10.0, gt=0)
    # A NEW order nobody resumed this long after its lease ended is failed and its stock released.
    stale_new_s: float = Field(default=30.0, gt=0)
    # The settler gives an order the vendor refuses (4xx) this many tries, backing off per order.
    settle_max_refusals: int = Field(default=4, ge=1, le=100)
    settle_backoff_s: float = Field(default=0.5, gt=0)
    # Traffic shaping (the protection traffic_shaping): order writes admitted per second, and how
    # many more a quiet gateway takes at once; above that POST /orders is shed with 429. A guard
    # rail above any load the scenarios put on the shop (storm under --load 20:2 is 40/s); an
    # operator limits traffic further for a while through PUT /_control/shaping.
    shaping_rate_per_s: float = Field(default=50.0, gt=0)
    shaping_burst: int = Field(default=50, ge=1)

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        """Reads every field from the upper-case variable of the same name."""
        values = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        return cls.model_validate(values)
