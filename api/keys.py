"""API keys as records: made, listed and revoked by `marshrut keys …` and by the admin endpoints.

A key is shown once, when it is made; the database keeps only its SHA-256. Every change is
recorded in the audit.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from marshrut.engine.problems import InputError, Problem

from .access import hash_key, new_key, record
from .db import ApiKey, utcnow
from .settings import ROLES, TENANT_PATTERN

MAX_DAYS = 36_500.0


def check_key_request(tenant: str, role: str, expires_days: float | None) -> None:
    problems = []
    if not re.fullmatch(TENANT_PATTERN, tenant or ""):
        problems.append(Problem("request", "имя арендатора: латинские буквы, цифры, _ . - (до 100 знаков)",
                                "invalid", column="tenant", value=(tenant or "")[:100]))
    if role not in ROLES:
        problems.append(Problem("request", f"роль должна быть одной из {', '.join(ROLES)}", "invalid", column="role",
                                value=str(role)[:20]))
    if expires_days is not None and not (math.isfinite(expires_days) and 0 <= expires_days <= MAX_DAYS):
        problems.append(Problem("request", f"число дней от 0 до {MAX_DAYS:g}", "invalid",
                                column="expires_days", value=str(expires_days)[:40]))
    if problems:
        raise InputError(problems, title="Ключ не создан (invalid key request)")


def key_row(key: ApiKey, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    state = "revoked" if key.revoked_at else "expired" if key.expires_at and key.expires_at <= now else "active"
    return {"id": key.id, "tenant": key.tenant, "role": key.role, "state": state, "created_at": key.created_at,
            "expires_at": key.expires_at, "revoked_at": key.revoked_at, "created_by": key.created_by}


def create_key(sessions: sessionmaker[Session], tenant: str, role: str, expires_days: float | None = None, *,
               by: str | None, by_role: str | None, address: str | None = None) -> dict:
    """A new key: `{"id", "key", "tenant", "role", "expires_at"}`; the key itself is never stored."""
    check_key_request(tenant, role, expires_days)
    key = new_key()
    now = utcnow()
    expires = None if expires_days is None else now + dt.timedelta(days=expires_days)
    row = ApiKey(key_hash=hash_key(key), tenant=tenant, role=role, created_at=now, expires_at=expires, created_by=by)
    with sessions.begin() as session:
        session.add(row)
    record(sessions, "key.create", tenant=tenant, key_id=by, role=by_role, object_type="key", object_id=row.id,
           address=address, detail={"role": role, "expires_at": expires.isoformat() + "Z" if expires else None})
    return {"id": row.id, "key": key, "tenant": tenant, "role": role, "expires_at": expires}


def list_keys(sessions: sessionmaker[Session], tenant: str | None = None) -> list[dict]:
    with sessions() as session:
        query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if tenant is not None:
            query = query.where(ApiKey.tenant == tenant)
        now = utcnow()
        return [key_row(key, now) for key in session.scalars(query)]


def revoke_key(sessions: sessionmaker[Session], key_id: str, *, by: str | None, by_role: str | None,
               address: str | None = None) -> dict | None:
    """Revokes the key (refused from the next request on); None if there is no such key."""
    with sessions.begin() as session:
        key = session.get(ApiKey, key_id[:32])
        if key is None:
            return None
        if key.revoked_at is None:
            session.execute(update(ApiKey).where(ApiKey.id == key.id, ApiKey.revoked_at.is_(None))
                            .values(revoked_at=utcnow()))
        session.refresh(key)
        row = key_row(key)
    record(sessions, "key.revoke", tenant=row["tenant"], key_id=by, role=by_role, object_type="key", object_id=key_id,
           address=address)
    return row
