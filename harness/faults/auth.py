"""Auth faults (the manual's root cause 6): bad tokens, a rotated key, a skewed clock, auth down.

Token faults mint the token a caller would present (`fault.token`) and prove it landed by the
auth service's own verdict on it: POST /verify must refuse it (401) for the reason that is the
token's defect (bad signature against the shop's real key, past expiry, not a JWT at all, a
start time in the future), so a fault whose token the shop would take for good never counts as
injected. Whether the shop's callers then reject it is not the fault's business: that is what the
scenarios judge. Tokens that need the shop's real signing key read it from Postgres over the
harness's own connection, as an attacker with a leaked key or an issuer with a wrong clock would
sign.

The clock skew is real: auth_service runs with libfaketime preloaded (harness/topology.py), and
`auth.clock_skew` writes the offset its wall clock reads, proven by the `now` of its /health.
Tokens issued before the skew are then verified by a clock behind or ahead of their issuer's.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import time
import uuid
from typing import Any, ClassVar

import docker.errors
import httpx
import jwt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field

from harness import topology
from harness.datastores import connect_database
from harness.errors import HarnessError
from harness.faults.base import Fault, Params, first_line, run_container
from harness.faults.network import Down
from harness.view import StackView

# The clock-skew fault's contract with a service that declares the `clock_skew` capability: it
# preloads libfaketime reading its offset ("+0", "-120") from this file on every clock read
# (FAKETIME_TIMESTAMP_FILE), so writing the file shifts its wall clock at once, with no restart.
CLOCK_OFFSET_FILE = "/var/lib/chaos-clock/offset"

ISSUER, ALGORITHM, AUDIENCE = "shop-auth", "ES256", "shop"
class TokenParams(Params):
    subject: str = Field(default="chaos-customer", min_length=1)


class ExpiredParams(TokenParams):
    age_s: int = Field(default=600, ge=1, le=86_400, description="how long ago it expired")


class FutureDatedParams(TokenParams):
    ahead_s: int = Field(default=60, ge=1, le=3600,
                         description="the token's iat/nbf are this far in the future (beyond the verifier's leeway "
                                     "to land)")


class SkewParams(Params):
    skew_s: int = Field(default=120, ge=-3600, le=3600,
                        description="shift the target's wall clock by this much (negative: behind)")


def _active_key(stack: StackView) -> tuple[str, str]:
    with connect_database(stack) as conn:
        row = conn.execute("SELECT kid, private_pem FROM signing_keys WHERE active "
                           "ORDER BY created_at DESC LIMIT 1").fetchone()
    if row is None:
        raise RuntimeError("auth_service has no signing key yet")
    return row[0], row[1]


def _health(stack: StackView, service: str) -> str:
    return f"{stack.endpoint(service).url}/health"


def _claims(subject: str, shift_s: int = 0, ttl_s: int = 300, audience: str = AUDIENCE) -> dict[str, Any]:
    now = int(time.time()) + shift_s
    return {"sub": subject, "aud": audience, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + ttl_s,
            "jti": uuid.uuid4().hex}


def verify(url: str, token: str, audience: str = AUDIENCE) -> tuple[int, dict[str, Any]]:
    """auth_service's verdict on a token under its full rules (`strict`: every check, whatever
    protections are switched off, so a mutant shop that would accept the token does not stop
    the fault from proving its defect): (status, body)."""
    response = httpx.post(f"{url}/verify", json={"token": token, "audience": audience, "strict": True}, timeout=5)
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


class TokenFault(Fault):
    """Base: `mint()` makes the token; landed when auth_service refuses it (401) for `rejected_as`,
    the PyJWT error that names the token's defect."""

    family = "auth"
    capability = "auth"
    Params: ClassVar[type[Params]] = TokenParams
    params: TokenParams
    rejected_as: ClassVar[str] = ""
    proves: ClassVar[str] = "auth_service's POST /verify refuses the token (401) for its defect"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = ""
        self.last_verdict: tuple[int, dict[str, Any]] | None = None

    def mint(self) -> str:
        raise NotImplementedError

    def _apply(self) -> None:
        self.token = self.mint()

    def verdict(self) -> int:
        """What auth_service answers for the token right now."""
        return verify(self.stack.endpoint(self.target).url, self.token)[0]

    def _landed(self) -> bool:
        if not self.token:
            return False
        self.last_verdict = status, body = verify(self.stack.endpoint(self.target).url, self.token)
        return status == 401 and str(body.get("reason", "")).startswith(f"{self.rejected_as}:")

    def undo_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        return None  # a token is only a string: nothing in the shop changed


class InvalidSignature(TokenFault):
    name = "auth.invalid_signature"
    description = "a well-formed token naming the shop's key id but signed by another key"
    rejected_as = "InvalidSignatureError"
    proves = "auth_service's POST /verify refuses the token (401) with InvalidSignatureError"

    def mint(self) -> str:
        kid, _ = _active_key(self.stack)
        forged = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return jwt.encode(_claims(self.params.subject), forged, algorithm=ALGORITHM, headers={"kid": kid})


class Expired(TokenFault):
    name = "auth.expired"
    description = "a genuine token that expired `age_s` seconds ago"
    Params = ExpiredParams
    params: ExpiredParams
    rejected_as = "ExpiredSignatureError"
    proves = "auth_service's POST /verify refuses the token (401) with ExpiredSignatureError"

    def mint(self) -> str:
        kid, key = _active_key(self.stack)
        claims = _claims(self.params.subject, shift_s=-(self.params.age_s + 300), ttl_s=300)
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


class WrongAudience(TokenFault):
    """Proven by auth_service verifying the token as genuine for the audience it names: the
    fragile verifier does not check audiences at all, so a 401 for the shop's audience can't be
    the proof there; whether the shop refuses it is what the invalid_token scenario judges."""

    name = "auth.wrong_audience"
    description = "a genuine token issued for another audience"
    proves = ("auth_service's POST /verify for the token's own audience accepts it and names that audience, "
              "not the shop's")
    audience: ClassVar[str] = "billing"

    def mint(self) -> str:
        kid, key = _active_key(self.stack)
        return jwt.encode(_claims(self.params.subject, audience=self.audience), key, algorithm=ALGORITHM,
                          headers={"kid": kid})

    def _landed(self) -> bool:
        if not self.token:
            return False
        self.last_verdict = status, body = verify(self.stack.endpoint(self.target).url, self.token, self.audience)
        return status == 200 and body.get("claims", {}).get("aud") == self.audience != AUDIENCE


class Garbage(TokenFault):
    name = "auth.garbage"
    description = "random bytes where a token should be"
    rejected_as = "DecodeError"
    proves = "auth_service's POST /verify refuses the token (401) with DecodeError"

    def mint(self) -> str:
        return secrets.token_urlsafe(48)


class FutureDatedToken(TokenFault):
    """A genuine token signed as if the issuer's clock ran `ahead_s` ahead: the token is what a
    skewed issuer would mint, but no clock of the shop moves (`auth.clock_skew` moves one)."""

    name = "auth.future_dated_token"
    description = "a genuine token whose iat/nbf are `ahead_s` in the future (not yet valid here)"
    Params = FutureDatedParams
    params: FutureDatedParams
    rejected_as = "ImmatureSignatureError"
    proves = "auth_service's POST /verify refuses the token (401) with ImmatureSignatureError"

    def mint(self) -> str:
        kid, key = _active_key(self.stack)
        return jwt.encode(_claims(self.params.subject, shift_s=self.params.ahead_s), key, algorithm=ALGORITHM,
                          headers={"kid": kid})


def _offset(skew_s: int) -> str:
    """libfaketime's relative offset: "+120", "-3", "+0"."""
    return f"{skew_s:+d}"


def _write_offset(container: Any, skew_s: int) -> None:
    """Replaces the offset file whole (temporary file, then rename): libfaketime rereads it on
    every clock read, and must never see it half-written."""
    result = container.exec_run(["sh", "-c", 'printf "%s\\n" "$1" > "$2.tmp" && mv -f "$2.tmp" "$2"',
                                 "sh", _offset(skew_s), CLOCK_OFFSET_FILE])
    if result.exit_code != 0:
        raise HarnessError(f"could not set the clock of {container.name}: "
                           f"{result.output.decode(errors='replace').strip()}")


def _put_zero_offset(container: Any) -> None:
    """The zero offset written into a stopped container's filesystem, where exec can't run."""
    data = f"{_offset(0)}\n".encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(CLOCK_OFFSET_FILE.rsplit("/", 1)[1])
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    if not container.put_archive(CLOCK_OFFSET_FILE.rsplit("/", 1)[0], archive.getvalue()):
        raise HarnessError(f"could not reset the clock offset of stopped container {container.name}")


def clock_within(health_url: str, skew_s: float, slack_s: float = 0.05) -> bool:
    """Whether the service's wall clock (the `now` of its /health) is `skew_s` off the harness's.
    Both read the same kernel clock, so the only uncertainty is the request's round trip: the
    service read its clock between `before` and `after`, which bounds its offset to
    [now - after, now - before]. An unanswered health is "not yet"."""
    try:
        before = time.time()
        now = float(httpx.get(health_url, timeout=2).json()["now"])
        after = time.time()
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return now - after - slack_s <= skew_s <= now - before + slack_s


class ClockSkew(Fault):
    """auth_service's wall clock runs `skew_s` off the rest of the world, for real: tokens it
    issued before the skew are verified by a clock behind (their iat/nbf in its future) or ahead
    (their exp in its past) of the clock that issued them. Heal sets the offset back to zero
    and waits until its clock reads the harness's again."""

    name = "auth.clock_skew"
    family = "auth"
    description = "shift auth_service's wall clock by `skew_s` (libfaketime; negative: behind)"
    proves = ("the `now` of auth_service's /health is `skew_s` off the harness's clock "
              "(within the request's round trip)")
    capability = "clock_skew"
    Params = SkewParams
    params: SkewParams
    heal_timeout_s: ClassVar[float] = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skewed = False

    def _apply(self) -> None:
        _write_offset(self.stack.docker_container(self.target), self.params.skew_s)
        self.skewed = True

    def _landed(self) -> bool:
        return clock_within(_health(self.stack, self.target), self.params.skew_s)

    def undo_state(self) -> dict[str, Any]:
        return {"service": self.target} if self.skewed else {}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Writes a zero offset into the run's own auth_service and waits until its clock (at
        its port now) reads the harness's again."""
        if not state:
            return
        service = state.get("service", "auth_service")  # records from before they named it
        try:
            container = run_container(stack, service)
        except docker.errors.NotFound:
            return  # the container is gone, and its clock with it
        if container.status in ("created", "exited", "dead"):
            # A stopped container keeps its files: a restart would bring the skew back, so the
            # zero offset is written into its filesystem directly (no reader while stopped).
            _put_zero_offset(container)
            return
        _write_offset(container, 0)
        deadline = time.monotonic() + cls.heal_timeout_s
        while not clock_within(_health(stack, service), 0):
            if time.monotonic() > deadline:
                raise HarnessError(f"wrote a zero clock offset, but auth_service's clock did not read the "
                                   f"harness's within {cls.heal_timeout_s:.0f}s")
            time.sleep(cls.poll_s)


class KeyRotation(Fault):
    """auth_service rotates its signing key; heal makes the previous key the active one again."""

    name = "auth.key_rotation"
    family = "auth"
    description = "rotate auth_service's signing key (old tokens must keep verifying)"
    proves = "the active key in the shop's signing_keys table is the one POST /keys/rotate returned"
    capability = "auth"
    Params = TokenParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.previous = ""
        self.new = ""

    def _apply(self) -> None:
        self.previous, _ = _active_key(self.stack)
        response = httpx.post(f"{self.stack.endpoint(self.target).url}/keys/rotate",
                              headers=topology.control_headers(self.stack.control_secret), timeout=5)
        response.raise_for_status()
        self.new = response.json()["kid"]

    def _landed(self) -> bool:
        return _active_key(self.stack)[0] == self.new

    def undo_state(self) -> dict[str, Any]:
        return {"previous": self.previous} if self.previous else {}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Makes the previous key active again in the run's own database (at its port now:
        a stored port can be another run's Postgres by then, with the same credentials). A
        database that does not answer is a failed heal, raised, never a healed one."""
        if not state:
            return
        try:
            with connect_database(stack, autocommit=True) as conn:
                conn.execute("UPDATE signing_keys SET active = (kid = %s)", [state["previous"]])
        except psycopg.OperationalError as exc:
            raise HarnessError(f"could not make signing key {state['previous']} active again: the database "
                               f"did not answer ({first_line(exc)})") from None


class AuthDown(Down):
    """auth_service unreachable for its callers: the `auth` proxy is disabled."""

    name = "auth.auth_down"
    family = "auth"
    description = "auth_service unreachable for its callers (its proxy is down)"
    proves = ("Toxiproxy reports the `auth` proxy disabled, and a connection through it gets nothing back "
              "(refused or closed at once)")
    capability = "auth"  # the proxies in front of the services that declare it


FAULTS = (InvalidSignature, Expired, WrongAudience, Garbage, FutureDatedToken, ClockSkew, KeyRotation, AuthDown)
