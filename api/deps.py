"""Dependencies shared by the routers: database session, settings, access by API key."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from .settings import Settings, is_loopback

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


def _role_of(settings: Settings, key: str) -> str | None:
    role = None
    for known, known_role in settings.keys.items():  # compare with every key: no timing hint
        if hmac.compare_digest(known.encode(), key.encode("utf-8", "surrogatepass")):
            role = known_role
    return role


def _keys_required(settings: Settings, request: Request) -> bool:
    if settings.keys_required:
        return True
    # The address the connection arrived on: an app started by hand on 0.0.0.0 without
    # MARSHRUT_HOST still asks a remote client for a key.
    server = request.scope.get("server")
    return bool(server) and not is_loopback(str(server[0]))


def require(role: str):
    """`viewer` may read; `planner` may also create and delete."""

    def check(request: Request, settings: SettingsDep,
              key: Annotated[str | None, Security(api_key_header)] = None,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None) -> str | None:
        if not _keys_required(settings, request):
            return None
        given = key or (credentials.credentials if credentials else None)
        if not given:
            raise HTTPException(401, "Нужен ключ API (API key required: X-API-Key header)",
                                headers={"WWW-Authenticate": "Bearer"})
        granted = _role_of(settings, given)
        if granted is None:
            raise HTTPException(401, "Неизвестный ключ API (unknown API key)", headers={"WWW-Authenticate": "Bearer"})
        if role == "planner" and granted != "planner":
            raise HTTPException(403, "Ключу с ролью viewer это не разрешено (this needs the planner role)")
        return granted

    return check


Viewer = Depends(require("viewer"))
Planner = Depends(require("planner"))
