"""Who is asking: a key resolved to (tenant, role), the tenant scope of every query, rates, the audit.

A request's `Access` is made by the `require(role)` dependency (`Viewer`, `Planner`, `Admin` in
deps.py) and attached to the request's database session (`session.info["access"]`), so that the
lookups every router uses (`get_region`, `get_plan`, `scoped`) see only the tenant's objects: an
object of another tenant is answered exactly like one that does not exist (404).

Keys come from two places: records in the database (`api_keys`, only a SHA-256 stored; revoked or
expired ones are refused on the next request) and MARSHRUT_API_KEYS (a first admin, scripts).
A server on a loopback address without MARSHRUT_REQUIRE_API_KEYS lets a request without a key in
as the local operator (admin of the `default` tenant); a key that is given is always checked.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .db import ApiKey, AuditRecord, dumps, utcnow
from .settings import DEFAULT_TENANT, ROLES, Settings, is_loopback

KEY_PREFIX = "mr_"


def hash_key(key: str) -> str:
    """Keys are 256 random bits: a plain SHA-256 cannot be reversed or guessed."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def env_key_id(key: str) -> str:
    """How the audit names a key of MARSHRUT_API_KEYS: a fingerprint, never the key."""
    return "env:" + hash_key(key)[:12]


def at_least(granted: str, needed: str) -> bool:
    return ROLES.index(granted) >= ROLES.index(needed)


@dataclass
class Access:
    """The caller of one request: role, tenant, which key, from which address."""

    role: str
    tenant: str
    key_id: str | None  # None: the local operator on a loopback server without keys
    address: str | None
    sessions: sessionmaker[Session] | None = field(default=None, repr=False)
    # the request's own session: the audit writes through it, so that a request never holds two
    # pooled connections at once (under load, waiting for a second one while holding the first
    # exhausts the pool)
    session: Session | None = field(default=None, repr=False)

    @property
    def all_tenants(self) -> bool:
        return self.role == "admin"

    def sees(self, tenant: str) -> bool:
        return self.all_tenants or tenant == self.tenant

    def scope(self, query, column):
        """`query` limited to the caller's tenant (an admin's is not limited)."""
        return query if self.all_tenants else query.where(column == self.tenant)

    def audit(self, action: str, object_type: str | None = None, object_id: str | None = None, *,
              tenant: str | None = None, outcome: str = "ok", detail: dict | None = None) -> None:
        """Appends one record and commits. Called after the action's own commit (or before any
        change), so that the record is the action's outcome and commits nothing else."""
        record(self.session or self.sessions, action, tenant=tenant or self.tenant, key_id=self.key_id,
               role=self.role, object_type=object_type, object_id=object_id, address=self.address,
               outcome=outcome, detail=detail)


def record(sessions: sessionmaker[Session] | Session, action: str, *, tenant: str, key_id: str | None,
           role: str | None, object_type: str | None = None, object_id: str | None = None,
           address: str | None = None, outcome: str = "ok", detail: dict | None = None) -> None:
    """One audit record, through an open session or a new one. `detail` holds ids and counts only:
    never a score or a bundle's content."""
    row = AuditRecord(at=utcnow(), tenant=tenant, key_id=key_id, role=role, action=action, object_type=object_type,
                      object_id=object_id, address=(address or None), outcome=outcome,
                      detail=None if detail is None else dumps(detail))
    if isinstance(sessions, Session):
        sessions.add(row)
        sessions.commit()
        return
    with sessions.begin() as session:
        session.add(row)


def access_of(session: Session) -> Access:
    """The request's caller, attached by the access dependency. A route without one is a bug: refuse."""
    access = session.info.get("access")
    if access is None:
        raise RuntimeError("this route has no access dependency (Viewer, Planner or Admin)")
    return access


def scoped(session: Session, query, column):
    """`query` limited to the tenant of the session's caller: use it for every list of a router."""
    return access_of(session).scope(query, column)


# ------------------------------------------------------------------------------------------------
# rates: a token bucket per key (per address without a key)
# ------------------------------------------------------------------------------------------------

class RateLimiter:
    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second, self.burst = per_second, burst
        self.buckets: dict[str, tuple[float, float]] = {}  # who -> (tokens, at)
        self.lock = threading.Lock()

    def wait_seconds(self, who: str) -> float:
        """0 and one token taken if `who` may go on now; otherwise seconds until it may."""
        now = time.monotonic()
        with self.lock:
            tokens, at = self.buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
            if tokens >= 1.0:
                self.buckets[who] = (tokens - 1.0, now)
                if len(self.buckets) > 100_000:  # forget the idle (full) buckets
                    self.buckets = {k: v for k, v in self.buckets.items() if v[0] < self.burst - 1}
                return 0.0
            self.buckets[who] = (tokens, now)
            return (1.0 - tokens) / self.per_second


# ------------------------------------------------------------------------------------------------
# resolving a key
# ------------------------------------------------------------------------------------------------

def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def keys_required(settings: Settings, request: Request) -> bool:
    if settings.keys_required:
        return True
    # The address the connection arrived on: an app started by hand on 0.0.0.0 without
    # MARSHRUT_HOST still asks a remote client for a key.
    server = request.scope.get("server")
    return bool(server) and not is_loopback(str(server[0]))


def _env_key(settings: Settings, given: str) -> tuple[str, str] | None:
    found = None
    for known, role_tenant in settings.keys.items():  # compare with every key: no timing hint
        if hmac.compare_digest(known.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")):
            found = role_tenant
    return found


def resolve(request: Request, session: Session, settings: Settings, given: str | None) -> Access:
    """The caller of `request` (401 for a missing, unknown, revoked or expired key where one is needed)."""
    address = request.client.host if request.client else None
    sessions = request.app.state.sessions
    if not given:
        if keys_required(settings, request):
            raise _unauthorized("Нужен ключ API (API key required: X-API-Key header)")
        return Access("admin", DEFAULT_TENANT, None, address, sessions, session)
    env = _env_key(settings, given)
    if env is not None:
        return Access(env[0], env[1], env_key_id(given), address, sessions, session)
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(given)))
    if key is None:
        raise _unauthorized("Неизвестный ключ API (unknown API key)")
    now = utcnow()
    refused = "revoked" if key.revoked_at is not None else \
        "expired" if key.expires_at is not None and key.expires_at <= now else None
    if refused:
        record(session, "access.refused", tenant=key.tenant, key_id=key.id, role=key.role, address=address,
               outcome=refused, detail={"method": request.method, "path": request.url.path})
        raise _unauthorized(f"Ключ API {'отозван' if refused == 'revoked' else 'истёк'} (API key {refused})")
    session.commit()  # nothing written: gives the lookup's connection back to the pool until it is needed
    return Access(key.role, key.tenant, key.id, address, sessions, session)


def check_rate(request: Request, access: Access, settings: Settings) -> None:
    if access.key_id is None:  # the local operator on a loopback server
        return
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.wait_seconds(access.key_id)
    if wait > 0:
        raise HTTPException(429, "Слишком много запросов, повторите позже (rate limit: retry later)",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


def check_role(access: Access, needed: str, request: Request) -> None:
    if not at_least(access.role, needed):
        access.audit("access.denied", outcome="denied",
                     detail={"method": request.method, "path": request.url.path, "needs": needed})
        raise HTTPException(403, f"Ключу с ролью {access.role} это не разрешено (this needs the {needed} role)")
