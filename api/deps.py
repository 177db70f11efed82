"""Dependencies shared by the routers: database session, settings, access by API key (see access.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from .access import Access, check_rate, check_role, resolve
from .settings import Settings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="API key (required when the server is bound to a non-loopback address)")
bearer = HTTPBearer(auto_error=False, description="the same API key as `Authorization: Bearer <key>`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def require(role: str):
    """A dependency: the caller's `Access` (401 without a valid key where one is needed, 403 below
    `role`, 429 over the key's rate). It is attached to the request's session, so `get_region`,
    `get_plan` and `scoped` see only the caller's tenant."""

    def check(request: Request, settings: SettingsDep, session: SessionDep,
              key: Annotated[str | None, Security(api_key_header)] = None,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None) -> Access:
        given = key or (credentials.credentials if credentials else None)
        access = resolve(request, session, settings, given)
        check_rate(request, access, settings)
        check_role(access, role, request)
        session.info["access"] = access
        return access

    return check


_viewer, _planner, _admin = require("viewer"), require("planner"), require("admin")
Viewer, Planner, Admin = Depends(_viewer), Depends(_planner), Depends(_admin)
# the same dependencies as parameters, for routes that need the caller (to audit, to set a tenant)
ViewerAccess = Annotated[Access, Depends(_viewer)]
PlannerAccess = Annotated[Access, Depends(_planner)]
AdminAccess = Annotated[Access, Depends(_admin)]
