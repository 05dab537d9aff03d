"""Token verification as every caller of auth_service does it (api_gateway, inventory_service).

A short timeout (call_timeouts), and when auth_service can't answer the caller fails CLOSED
(auth_fail_closed: AuthUnavailable -> 503): no request passes unverified. Without it an auth
outage fails OPEN, letting requests through unverified: the hole the scenarios must catch.
An invalid token is rejected either way, with the manual's line.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import structlog
from fastapi.responses import JSONResponse

from shop.logs import INVALID_TOKEN
from shop.protections import on

VERIFY_TIMEOUT_S = float(os.environ.get("AUTH_TIMEOUT_S", "1.0"))
log = structlog.get_logger().bind(service=os.environ.get("SERVICE_NAME", "unknown"))


class AuthDenied(Exception):
    """The token is missing, malformed, expired, for another audience or badly signed: 401."""


class AuthUnavailable(Exception):
    """auth_service could not give an answer in time: fail closed with 503."""


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def verify(http: httpx.AsyncClient, authorization: str | None, audience: str = "shop") -> dict[str, Any]:
    """The token's claims, or AuthDenied / AuthUnavailable (the latter only when failing closed)."""
    token = _bearer(authorization)
    if token is None:
        log.warning(INVALID_TOKEN, reason="missing bearer token")
        raise AuthDenied("missing bearer token")
    try:
        response = await http.post(
            f"{os.environ['AUTH_URL']}/verify", json={"token": token, "audience": audience},
            timeout=VERIFY_TIMEOUT_S if on("call_timeouts") else None)
    except httpx.HTTPError as exc:
        return _unavailable(f"auth unreachable: {type(exc).__name__}")
    if response.status_code == 401:
        reason = response.json().get("reason", "rejected")
        log.warning(INVALID_TOKEN, reason=reason)
        raise AuthDenied(reason)
    if response.status_code != 200:
        return _unavailable(f"auth answered {response.status_code}")
    return response.json()["claims"]


def _unavailable(reason: str) -> dict[str, Any]:
    if on("auth_fail_closed"):
        log.error("auth_unavailable", reason=reason, decision="fail_closed")
        raise AuthUnavailable(reason)
    log.warning("auth_unavailable", reason=reason, decision="fail_open")
    return {"sub": None, "unverified": True}


def denial(exc: AuthDenied | AuthUnavailable) -> JSONResponse:
    """The answer to give for a failed verification."""
    if isinstance(exc, AuthDenied):
        return JSONResponse({"error": "invalid token", "reason": str(exc)}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return JSONResponse({"error": "authentication unavailable", "reason": str(exc)}, status_code=503,
                        headers={"Retry-After": "1"})
