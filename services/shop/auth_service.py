"""auth_service: issues and verifies JWTs signed with asymmetric keys kept in Postgres.

Keys (ES256) live in the database so every replica and a restarted service agree on them, and
so a key rotation is a row, not a deploy. Verification checks signature, expiry and audience,
with a small leeway for clock skew in resilient mode (the manual: time drift between services
is a cause of token failures) and none in fragile mode.
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
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import Counter, make_asgi_app
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from shop.health import report
from shop.logs import INVALID_TOKEN, configure

RESILIENT = os.environ.get("SUT_MODE", "resilient") == "resilient"
LEEWAY_S = float(os.environ.get("AUTH_LEEWAY_S", "5")) if RESILIENT else 0.0
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


class Keys:
    """The signing key and every public key by kid, reloaded from the database periodically."""

    def __init__(self) -> None:
        self.active: tuple[str, str] | None = None  # (kid, private pem)
        self.public: dict[str, str] = {}
        self.ready = False


keys = Keys()
pool: AsyncConnectionPool = None  # type: ignore[assignment]  # opened by the lifespan


def _new_key() -> tuple[str, str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return uuid.uuid4().hex[:16], private_pem, public_pem


async def _load() -> None:
    async with pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT kid, private_pem, public_pem, active FROM signing_keys ORDER BY created_at")).fetchall()
    keys.public = {kid: public for kid, _, public, _ in rows}
    active = [(kid, private) for kid, private, _, is_active in rows if is_active]
    keys.active = active[-1] if active else None
    keys.ready = keys.active is not None


async def _prepare() -> None:
    """Creates the table and a first key once the database answers, then keeps keys fresh."""
    deadline = time.monotonic() + 120
    while not keys.ready and time.monotonic() < deadline:
        try:
            async with pool.connection() as conn:
                await conn.execute(SCHEMA)
                await conn.execute("SELECT pg_advisory_lock(4242)")
                try:
                    has_key = (await (await conn.execute(
                        "SELECT count(*) FROM signing_keys WHERE active")).fetchone())[0]
                    if not has_key:
                        await conn.execute("INSERT INTO signing_keys (kid, private_pem, public_pem) "
                                           "VALUES (%s, %s, %s)", _new_key())
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(4242)")
            await _load()
            log.info("keys_ready", kid=keys.active[0] if keys.active else None)
        except Exception as exc:  # the database is not there yet: retried until the deadline
            log.info("database_waiting", error=type(exc).__name__)
            await asyncio.sleep(0.2)
    while True:  # pick up rotations made by other replicas or by the harness
        await asyncio.sleep(2)
        with contextlib.suppress(Exception):
            await _load()


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=1, max_size=5, open=False,
                               kwargs={"connect_timeout": 3, "autocommit": True})
    await pool.open(wait=False)
    task = asyncio.create_task(_prepare())
    yield
    task.cancel()
    await pool.close()


app = FastAPI(title="auth_service", lifespan=lifespan)
app.mount("/metrics", make_asgi_app())


@app.post("/tokens")
async def issue(body: TokenRequest) -> JSONResponse:
    if not keys.active:
        return JSONResponse({"error": "no signing key yet"}, status_code=503, headers={"Retry-After": "1"})
    kid, private_pem = keys.active
    now = int(time.time())
    claims = {"sub": body.subject, "aud": body.audience, "iss": ISSUER, "iat": now, "nbf": now,
              "exp": now + body.ttl_s, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, private_pem, algorithm=ALGORITHM, headers={"kid": kid})
    return JSONResponse({"token": token, "kid": kid, "expires_at": claims["exp"]}, status_code=201)


@app.post("/keys/rotate")
async def rotate() -> dict:
    """A new active key; old public keys keep verifying the tokens they signed."""
    kid, private_pem, public_pem = _new_key()
    async with pool.connection() as conn:
        await conn.execute("UPDATE signing_keys SET active = false")
        await conn.execute("INSERT INTO signing_keys (kid, private_pem, public_pem) VALUES (%s, %s, %s)",
                           [kid, private_pem, public_pem])
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
        claims = jwt.decode(body.token, public, algorithms=[ALGORITHM], audience=body.audience,
                            issuer=ISSUER, leeway=LEEWAY_S, options={"require": ["exp", "aud", "sub"]})
    except jwt.InvalidTokenError as exc:
        VERIFICATIONS.labels("rejected").inc()
        log.warning(INVALID_TOKEN, reason=f"{type(exc).__name__}: {exc}")
        return JSONResponse({"valid": False, "reason": f"{type(exc).__name__}: {exc}"}, status_code=401)
    VERIFICATIONS.labels("accepted").inc()
    return JSONResponse({"valid": True, "claims": claims})


@app.get("/health")
async def health() -> JSONResponse:
    body = report({"signing_key": (keys.ready, 100)}) | {"service": "auth_service"}
    return JSONResponse(body, status_code=200 if keys.ready else 503)
