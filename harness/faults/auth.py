"""Auth faults (the manual's root cause 6): bad tokens, a rotated key, a skewed clock, auth down.

Token faults mint the token a caller would present (`fault.token`) and prove it landed by
checking the token has its defect (bad signature against the shop's real key, past expiry, another
audience, not a JWT at all, a start time in the future). Whether the shop rejects it is not the
fault's business: that is what the scenarios judge. Tokens
that need the shop's real signing key read it from Postgres over the harness's own connection,
as an attacker with a leaked key or an issuer with a wrong clock would sign.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any, ClassVar

import httpx
import jwt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field

from harness.clients import connect_database, database_params
from harness.faults.base import Fault, Params
from harness.faults.network import Down

ISSUER, ALGORITHM, AUDIENCE = "shop-auth", "ES256", "shop"


class TokenParams(Params):
    subject: str = Field(default="chaos-customer", min_length=1)


class ExpiredParams(TokenParams):
    age_s: int = Field(default=600, ge=1, le=86_400, description="how long ago it expired")


class SkewParams(TokenParams):
    skew_s: int = Field(default=60, ge=-3600, le=3600, description="the issuer's clock is this far ahead")


def _active_key(stack: Any) -> tuple[str, str]:
    with connect_database(stack) as conn:
        row = conn.execute("SELECT kid, private_pem FROM signing_keys WHERE active "
                           "ORDER BY created_at DESC LIMIT 1").fetchone()
    if row is None:
        raise RuntimeError("auth_service has no signing key yet")
    return row[0], row[1]


def _claims(subject: str, shift_s: int = 0, ttl_s: int = 300, audience: str = AUDIENCE) -> dict[str, Any]:
    now = int(time.time()) + shift_s
    return {"sub": subject, "aud": audience, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + ttl_s,
            "jti": uuid.uuid4().hex}


class TokenFault(Fault):
    """Base: `mint()` makes the token; landed when `defective()` confirms the token's defect."""

    family = "auth"
    targets = ("auth_service",)
    Params: ClassVar = TokenParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = ""

    def mint(self) -> str:
        raise NotImplementedError

    def _apply(self) -> None:
        self.token = self.mint()

    def verdict(self) -> int:
        """What auth_service answers for the token right now."""
        response = httpx.post(f"{self.stack.endpoint(self.target).url}/verify",
                              json={"token": self.token, "audience": AUDIENCE}, timeout=5)
        return response.status_code

    def claims(self) -> dict[str, Any]:
        return jwt.decode(self.token, options={"verify_signature": False})

    def defective(self) -> bool:
        raise NotImplementedError

    def _landed(self) -> bool:
        return bool(self.token) and self.defective()

    def undo_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def undo_from(cls, state: dict[str, Any]) -> None:
        return None  # a token is only a string: nothing in the shop changed


class InvalidSignature(TokenFault):
    name = "auth.invalid_signature"
    description = "a well-formed token naming the shop's key id but signed by another key"

    def mint(self) -> str:
        kid, _ = _active_key(self.stack)
        forged = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return jwt.encode(_claims(self.params.subject), forged, algorithm=ALGORITHM, headers={"kid": kid})

    def defective(self) -> bool:
        with connect_database(self.stack) as conn:
            row = conn.execute("SELECT public_pem FROM signing_keys WHERE kid = %s",
                               [jwt.get_unverified_header(self.token)["kid"]]).fetchone()
        try:
            jwt.decode(self.token, row[0], algorithms=[ALGORITHM], options={"verify_aud": False})
        except jwt.InvalidSignatureError:
            return True
        return False


class Expired(TokenFault):
    name = "auth.expired"
    description = "a genuine token that expired `age_s` seconds ago"
    Params = ExpiredParams

    def mint(self) -> str:
        kid, key = _active_key(self.stack)
        claims = _claims(self.params.subject, shift_s=-(self.params.age_s + 300), ttl_s=300)
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    def defective(self) -> bool:
        return self.claims()["exp"] < time.time() - self.params.age_s + 1


class WrongAudience(TokenFault):
    name = "auth.wrong_audience"
    description = "a genuine token issued for another audience"

    def mint(self) -> str:
        kid, key = _active_key(self.stack)
        return jwt.encode(_claims(self.params.subject, audience="billing"), key, algorithm=ALGORITHM,
                          headers={"kid": kid})

    def defective(self) -> bool:
        return self.claims()["aud"] != AUDIENCE


class Garbage(TokenFault):
    name = "auth.garbage"
    description = "random bytes where a token should be"

    def mint(self) -> str:
        return secrets.token_urlsafe(48)

    def defective(self) -> bool:
        try:
            jwt.get_unverified_header(self.token)
        except jwt.DecodeError:
            return True
        return False


class ClockSkew(TokenFault):
    name = "auth.clock_skew"
    description = "a genuine token from an issuer whose clock is `skew_s` ahead (not yet valid here)"
    Params = SkewParams

    def mint(self) -> str:
        kid, key = _active_key(self.stack)
        return jwt.encode(_claims(self.params.subject, shift_s=self.params.skew_s), key, algorithm=ALGORITHM,
                          headers={"kid": kid})

    def defective(self) -> bool:
        return abs(self.claims()["nbf"] - time.time() - self.params.skew_s) < 5


class KeyRotation(Fault):
    """auth_service rotates its signing key; heal makes the previous key the active one again."""

    name = "auth.key_rotation"
    family = "auth"
    description = "rotate auth_service's signing key (old tokens must keep verifying)"
    targets = ("auth_service",)
    Params = TokenParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.previous = ""
        self.new = ""

    def _apply(self) -> None:
        self.previous, _ = _active_key(self.stack)
        response = httpx.post(f"{self.stack.endpoint(self.target).url}/keys/rotate", timeout=5)
        response.raise_for_status()
        self.new = response.json()["kid"]

    def _landed(self) -> bool:
        return _active_key(self.stack)[0] == self.new

    def undo_state(self) -> dict[str, Any]:
        return {"dsn": database_params(self.stack), "previous": self.previous} if self.previous else {}

    @classmethod
    def undo_from(cls, state: dict[str, Any]) -> None:
        if not state:
            return
        try:
            with psycopg.connect(**state["dsn"], autocommit=True) as conn:
                conn.execute("UPDATE signing_keys SET active = (kid = %s)", [state["previous"]])
        except psycopg.OperationalError:
            pass  # the run's database is gone: nothing to restore


class AuthDown(Down):
    """auth_service unreachable for its callers: the `auth` proxy is disabled."""

    name = "auth.auth_down"
    family = "auth"
    description = "auth_service unreachable for api_gateway and inventory_service (its proxy is down)"
    targets = ("auth",)


FAULTS = (InvalidSignature, Expired, WrongAudience, Garbage, ClockSkew, KeyRotation, AuthDown)
