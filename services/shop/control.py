"""The run's control secret: what every control endpoint of the shop asks for.

Token minting, key rotation, the vendor's control API, the sink's reset and the protection
switchboard change what a run observes and proves; anyone who can reach the loopback could
otherwise mint tokens or wipe a run's evidence. The harness generates one secret per stack and
hands it to every service in CONTROL_SECRET_ENV; its clients send it in HEADER. A service
started without a secret refuses every control call (it fails closed, never open). Only the
standard library here, so the harness's unit tests read this file; shop.switchboard holds the
FastAPI dependency built on it (require_control).
"""

from __future__ import annotations

import hmac

HEADER = "X-Chaos-Control"
CONTROL_SECRET_ENV = "CHAOS_CONTROL_SECRET"


def verdict(given: str | None, expected: str) -> int | None:
    """None when `given` is the secret; else the status to refuse with: 401 without one, 403
    with a wrong one (or when the service has none). Compared in constant time."""
    if not given:
        return 401
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return 403
    return None
