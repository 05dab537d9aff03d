"""auth_service: issues and verifies JWTs signed with asymmetric keys kept in Postgres.

Keys (ES256) live in the database so every replica and a restarted service agree on them, and
so a key rotation is a row, not a deploy. Verification checks signature, expiry and audience,
with a small leeway for clock skew (the leeway protection; the manual: time drift between
services is a cause of token failures). Without audience_check a token issued for another
service is accepted. Minting and rotation are the harness's: they ask for the run's control
secret (shop.control); verification is every caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import Counter, make_asgi_app
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from shop.db import Database, DatabaseUnavailable, unavailable_response
from shop.health import report
from shop.logs import INVALID_TOKEN, configure
from shop.protections import on
from shop.switchboard import require_control
from shop.switchboard import router as protections_router

LEEWAY_S = float(os.environ.get("AUTH_LEEWAY_S", "5"))
ISSUER = "shop-auth"
ALGORITHM = "ES256"
log = configure("auth_service")
VERIFICATIONS = Counter("auth_verifications_total", "Token verifications, by result", ["result"])

SCHEMA = """
CREATE TABLE IF NOT EXISTS signing_keys (
    kid text PRIMARY KEY,
    private_pem text NOT NULL,
    public_pem text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class TokenRequest(BaseModel):
    subject: str = Field(min_length=1, max_length=128)
    audience: str = "shop"
    ttl_s: int = Field(default=300, ge=1, le=86_400)


class VerifyRequest(BaseModel):
    token: str
    audience: str = "shop"
    # Every check, whatever protections are switched off: what the service's full rules say of
    # a token (the harness's token faults prove their defect with it). Callers leave it false.
    strict: bool = False


class Keys:
    """The signing key and every public key by kid, reloaded from the database periodically."""

    def __init__(self) -> None:
        self.active: tuple[str, str] | None = None  # (kid, private pem)
        self.public: dict[str, str] = {}
        self.ready = False
        self.logged = False


keys = Keys()
db = Database(os.environ.get("DATABASE_URL", ""), log, "auth", min_size=1, max_size=5)


def _new_key() -> tuple[str, str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return uuid.uuid4().hex[:16], private_pem, public_pem


async def _load() -> None:
    rows = await db.rows("SELECT kid, private_pem, public_pem, active FROM signing_keys ORDER BY created_at")
    keys.public = {row["kid"]: row["public_pem"] for row in rows}
    active = [(row["kid"], row["private_pem"]) for row in rows if row["active"]]
    keys.active = active[-1] if active else None
    keys.ready = keys.active is not None


async def _setup(conn: AsyncConnection) -> None:
    """The table and a first key, under an advisory lock so replicas starting together agree."""
    await conn.execute(SCHEMA)
    await conn.execute("SELECT pg_advisory_lock(4242)")
    try:
        has_key = (await (await conn.execute("SELECT count(*) FROM signing_keys WHERE active")).fetchone())[0]
        if not has_key:
            await conn.execute("INSERT INTO signing_keys (kid, private_pem, public_pem) VALUES (%s, %s, %s)",
                               _new_key())
    finally:
        await conn.execute("SELECT pg_advisory_unlock(4242)")


async def _prepare() -> None:
    """Creates the table and a first key once the database answers, then keeps keys fresh
    (keys verify from memory, so a database outage does not stop verification)."""
    await db.prepare(_setup)
    while True:  # pick up rotations made by other replicas or by the harness
        with contextlib.suppress(Exception):
            await _load()
            if keys.ready and not keys.logged:
                keys.logged = True
                log.info("keys_ready", kid=keys.active[0] if keys.active else None)
        await asyncio.sleep(0.5 if not keys.ready else 2)


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await db.open()
    task = asyncio.create_task(_prepare())
    yield
    task.cancel()
    await db.close()


app = FastAPI(title="auth_service", lifespan=lifespan)
app.mount("/metrics", make_asgi_app())
app.include_router(protections_router)


app.add_exception_handler(DatabaseUnavailable, unavailable_response)


@app.post("/tokens", dependencies=[Depends(require_control)])
async def issue(body: TokenRequest) -> JSONResponse:
    if not keys.active:
        return JSONResponse({"error": "no signing key yet"}, status_code=503, headers={"Retry-After": "1"})
    kid, private_pem = keys.active
    now = int(time.time())
    claims = {"sub": body.subject, "aud": body.audience, "iss": ISSUER, "iat": now, "nbf": now,
              "exp": now + body.ttl_s, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, private_pem, algorithm=ALGORITHM, headers={"kid": kid})
    return JSONResponse({"token": token, "kid": kid, "expires_at": claims["exp"]}, status_code=201)


@app.post("/keys/rotate", dependencies=[Depends(require_control)])
async def rotate() -> dict:
    """A new active key; old public keys keep verifying the tokens they signed."""
    kid, private_pem, public_pem = _new_key()

    async def work(conn: AsyncConnection) -> None:
        await conn.execute("UPDATE signing_keys SET active = false")
        await conn.execute("INSERT INTO signing_keys (kid, private_pem, public_pem) VALUES (%s, %s, %s)",
                           [kid, private_pem, public_pem])

    await db.run(work, transaction=True)
    await _load()
    log.info("key_rotated", kid=kid)
    return {"kid": kid}


@app.post("/verify")
async def verify(body: VerifyRequest) -> JSONResponse:
    try:
        kid = jwt.get_unverified_header(body.token).get("kid")
        public = keys.public.get(kid or "")
        if public is None:
            raise jwt.InvalidTokenError(f"unknown signing key {kid!r}")
        audience_check, expiry_check = body.strict or on("audience_check"), body.strict or on("expiry_check")
        claims = jwt.decode(body.token, public, algorithms=[ALGORITHM], audience=body.audience,
                            issuer=ISSUER, leeway=LEEWAY_S if body.strict or on("leeway") else 0.0,
                            options={"require": ["exp", "aud", "sub"], "verify_aud": audience_check,
                                     "verify_exp": expiry_check, "verify_nbf": expiry_check,
                                     "verify_iat": expiry_check})
    except jwt.InvalidTokenError as exc:
        VERIFICATIONS.labels("rejected").inc()
        log.warning(INVALID_TOKEN, reason=f"{type(exc).__name__}: {exc}")
        return JSONResponse({"valid": False, "reason": f"{type(exc).__name__}: {exc}"}, status_code=401)
    VERIFICATIONS.labels("accepted").inc()
    return JSONResponse({"valid": True, "claims": claims})


@app.get("/health")
async def health() -> JSONResponse:
    # `now`: this service's wall clock, so a skew of it (the harness's auth.clock_skew) can be read.
    body = report({"signing_key": (keys.ready, 100)}) | {"service": "auth_service", "now": time.time()}
    return JSONResponse(body, status_code=200 if keys.ready else 503)
