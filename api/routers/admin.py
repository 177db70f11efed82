"""/v1/keys and /v1/audit: an admin makes and revokes keys and reads the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ..db import AuditRecord, loads
from ..deps import AdminAccess, SessionDep
from ..keys import create_key, list_keys, revoke_key
from ..schemas import ErrorResponse
from ..settings import ROLES, TENANT_PATTERN
from .regions import ERRORS

router = APIRouter(prefix="/v1", tags=["admin"])

Role = Annotated[str, Field(pattern="^(" + "|".join(ROLES) + ")$", description="viewer | planner | admin")]


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(pattern=f"^{TENANT_PATTERN}$", description="the tenant the key belongs to")
    role: Role
    expires_days: float | None = Field(None, ge=0, le=36_500, description="days until it expires (decimals allowed; "
                                                                          "0: already expired); none: never")


class KeyCreated(BaseModel):
    id: str
    key: str = Field(description="shown once: only its hash is stored")
    tenant: str
    role: str
    expires_at: dt.datetime | None


class KeyOut(BaseModel):
    id: str
    tenant: str
    role: str
    state: str = Field(description="active | expired | revoked")
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    created_by: str | None


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    tenant: str
    key_id: str | None
    role: str | None
    action: str
    object_type: str | None
    object_id: str | None
    address: str | None
    outcome: str
    detail: dict | None


@router.post("/keys", status_code=201, response_model=KeyCreated, summary="Make a key (shown once)",
             responses={**ERRORS})
def make_key(body: KeyRequest, access: AdminAccess) -> KeyCreated:
    made = create_key(access.sessions, body.tenant, body.role, body.expires_days, by=access.key_id,
                      by_role=access.role, address=access.address)
    return KeyCreated(**made)


@router.get("/keys", response_model=list[KeyOut], summary="Keys (never the keys themselves)", responses=ERRORS)
def read_keys(access: AdminAccess,
              tenant: Annotated[str | None, Query(max_length=100)] = None) -> list[KeyOut]:
    return [KeyOut(**row) for row in list_keys(access.sessions, tenant)]


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke a key: refused from the next request on",
               responses={**ERRORS, 404: {"model": ErrorResponse, "description": "no key with this id"}})
def revoke(key_id: str, access: AdminAccess) -> Response:
    if revoke_key(access.sessions, key_id, by=access.key_id, by_role=access.role, address=access.address) is None:
        raise HTTPException(404, "Ключ не найден (key not found)")
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut], responses=ERRORS,
            summary="The audit trail, oldest first: who did what to which object, from where, how it ended")
def read_audit(access: AdminAccess, session: SessionDep,
               tenant: Annotated[str | None, Query(max_length=100)] = None,
               since: Annotated[dt.datetime | None, Query(description="from this time (UTC) on")] = None,
               until: Annotated[dt.datetime | None, Query(description="before this time (UTC)")] = None,
               action: Annotated[str | None, Query(max_length=64)] = None,
               after_id: Annotated[int, Query(ge=0, le=2**31 - 1, description="records after this id")] = 0,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[AuditOut]:
    query = select(AuditRecord).where(AuditRecord.id > after_id)
    if tenant is not None:
        query = query.where(AuditRecord.tenant == tenant)
    for bound, op in ((since, "ge"), (until, "lt")):
        if bound is not None:
            if bound.tzinfo is not None:
                try:
                    bound = bound.astimezone(dt.UTC).replace(tzinfo=None)
                except OverflowError:  # e.g. 0001-01-01T00:00+14:00
                    raise HTTPException(422, "Время вне допустимого диапазона (time out of range)") from None
            query = query.where(AuditRecord.at >= bound if op == "ge" else AuditRecord.at < bound)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    rows = session.scalars(query.order_by(AuditRecord.id).limit(limit)).all()
    return [AuditOut(id=r.id, at=r.at, tenant=r.tenant, key_id=r.key_id, role=r.role, action=r.action,
                     object_type=r.object_type, object_id=r.object_id, address=r.address, outcome=r.outcome,
                     detail=loads(r.detail)) for r in rows]
