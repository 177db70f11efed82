"""The marshrut HTTP API: `create_app(settings)` builds it; `app_factory` is uvicorn's entry point.

    uvicorn api.main:app_factory --factory
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access import RateLimiter
from .db import Plan, create_schema, make_engine, session_factory
from .settings import Settings
from .worker import Dispatcher, start_forkserver

# The engine (pandas, OR-Tools, scikit-learn) is imported inside create_app, after the forkserver
# has been started: the two imports then overlap instead of adding up at start-up.

log = logging.getLogger("marshrut.api")  # under "marshrut": see _log_to_stderr

DESCRIPTION = """
Individual professional development routes for school teachers (индивидуальные образовательные
маршруты педагогов): mentors, internship sessions and programs, planned within capacities, dates,
travel and budgets, with a proved optimality gap.

1. `POST /v1/regions` with a bundle (`.zip` of the CSV folder or `.xlsx`, docs/bundle.md) → `region_id`
   (a bad bundle → 422 listing every problem: file, row, column, value).
2. `POST /v1/plans` `{"region_id", "params"}` → `plan_id`; the plan is solved in the background.
3. `GET /v1/plans/{plan_id}` until `status` is `done`; then `/summary`, `/assignments`
   (`?format=csv`), `/routes/{teacher_id}`, `/clusters`, `/export.xlsx` (the planner's workbook),
   `/documents/teachers/{teacher_id}` (a route document, .docx or .pdf) and
   `/documents/schools/{school_id}` (a school's package, .zip).
4. A nation (regions tied by federal programs, seats and budget, docs/nation.md): `POST /v1/nations`
   with its `.zip` → `nation_id`; `POST /v1/nations/{nation_id}/plans` `{"params"}` → `plan_id`,
   followed at `GET /v1/plans/{plan_id}`; then `/summary`, `/nation.zip` and
   `/regions/{region_id}/files/{name}`.

Bound to a non-loopback address the service asks for an API key (`X-API-Key` or
`Authorization: Bearer`). A key belongs to a tenant and has a role: `viewer` reads, `planner` also
creates, changes and deletes, `admin` also manages keys (`/v1/keys`), reads the audit (`/v1/audit`)
and sees every tenant. Another tenant's region or plan is answered 404, like a missing one. A key
over its rate, or a tenant over its number of queued jobs, gets 429 with `Retry-After`.
"""


class SafeJSONResponse(JSONResponse):
    """UTF-8 JSON that cannot fail on a lone surrogate echoed back from a request (it is escaped)."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")) \
            .encode("utf-8", "backslashreplace")


UPLOADS = ("/v1/regions", "/v1/nations")  # bundles: MARSHRUT_MAX_UPLOAD_BYTES, not the JSON body limit


class BodyLimit:
    """413 for a request body over the limit, before it is read (Content-Length) or while it is."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.upload_limit = settings.max_upload_bytes + 1024 * 1024  # room for the multipart framing
        self.body_limit = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].rstrip("/") in UPLOADS else self.body_limit
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # an HTTPException passes through FastAPI's body parsing and becomes a 413
                    raise StarletteHTTPException(413, _too_large_text(limit))
            return message

        await self.app(scope, limited, send)


def _too_large_text(limit: int) -> str:
    return f"Запрос больше {limit} байт (request body too large)"


def _too_large(limit: int) -> SafeJSONResponse:
    return SafeJSONResponse({"detail": _too_large_text(limit), "total": 0, "shown": 0, "problems": []},
                            status_code=413, headers={"Connection": "close"})


def _printable(value) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text_value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if not text_value.isprintable():
        text_value = text_value.encode("unicode_escape").decode("ascii")
    return text_value[:200]


def validation_problems(errors) -> list[dict]:
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = loc[1:] if loc and loc[0] == "body" else loc
        column = ".".join(where) or None
        problems.append({"file": "params" if where[:1] == ["params"] else "request",
                         "message": str(error.get("msg", "invalid")), "code": str(error.get("type", "invalid")),
                         "row": None, "column": column, "value": _printable(error.get("input"))})
    return problems


def install_error_handlers(app: FastAPI) -> None:
    from marshrut.engine import InputError

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> SafeJSONResponse:
        problems = validation_problems(error.errors())
        title = ("Ошибки в параметрах плана" if problems and all(p["file"] == "params" for p in problems)
                 else "Ошибки в запросе (invalid request)")
        return SafeJSONResponse({"detail": title, "total": len(problems), "shown": len(problems),
                                 "problems": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> SafeJSONResponse:
        body = error.detail if isinstance(error.detail, dict) else {"detail": str(error.detail)}
        body = {"total": 0, "shown": 0, "problems": [], **body}
        return SafeJSONResponse(body, status_code=error.status_code, headers=getattr(error, "headers", None))

    @app.exception_handler(InputError)
    async def input_error(_request: Request, error: InputError) -> SafeJSONResponse:
        body = error.as_dict()
        return SafeJSONResponse({"detail": body.pop("title"), **body}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def conflict(_request: Request, _error: IntegrityError) -> SafeJSONResponse:
        # two requests raced on the same region or plan (e.g. a plan created while its region is deleted)
        return SafeJSONResponse({"detail": "Конфликт с одновременным изменением, повторите запрос (conflict with a "
                                           "concurrent change: retry)", "total": 0, "shown": 0, "problems": []},
                                status_code=409)

    @app.exception_handler(StaleDataError)
    @app.exception_handler(ObjectDeletedError)
    async def gone(_request: Request, _error: Exception) -> SafeJSONResponse:
        return SafeJSONResponse({"detail": "Объект удалён одновременным запросом (deleted by a concurrent request)",
                                 "total": 0, "shown": 0, "problems": []}, status_code=404)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> SafeJSONResponse:
        # a bug: log where, never the request's data
        log.error("unhandled %s on %s %s", type(error).__name__, request.method, request.url.path)
        return SafeJSONResponse({"detail": "Внутренняя ошибка сервера (internal server error)", "total": 0,
                                 "shown": 0, "problems": []}, status_code=500)


def _log_to_stderr() -> None:
    """Plan status changes (ids only, never data) to stderr, next to uvicorn's own lines."""
    logger = logging.getLogger("marshrut")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check()
    _log_to_stderr()
    start_forkserver()
    from .routers import admin, documents, explain, nations, plans, regions, registry, web
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    dispatcher = Dispatcher(settings, sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        create_schema(engine)
        dispatcher.start()
        try:
            yield
        finally:
            dispatcher.stop()
            engine.dispose()

    app = FastAPI(title="marshrut", version="1", description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=SafeJSONResponse,
                  openapi_tags=[{"name": "regions", "description": "region bundles (docs/bundle.md)"},
                                {"name": "plans", "description": "plans (docs/), solved in the background"},
                                {"name": "nations", "description": "nations: regions tied by federal resources "
                                                                   "(docs/nation.md)"},
                                {"name": "service"}])
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.dispatcher = dispatcher
    app.state.rate_limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
    app.add_middleware(BodyLimit, settings=settings)
    install_error_handlers(app)
    app.include_router(regions.router)
    app.include_router(plans.router)
    app.include_router(registry.router)
    app.include_router(web.router)
    app.include_router(explain.router)
    app.include_router(documents.router)
    app.include_router(admin.router)
    app.include_router(nations.router)

    @app.get("/healthz", tags=["service"], summary="Liveness and database check",
             responses={503: {"description": "the database is unreachable"}})
    def healthz() -> dict:
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
                counts = dict(session.execute(select(Plan.status, func.count()).where(
                    Plan.status.in_(("queued", "running"))).group_by(Plan.status)).all())
        except Exception as error:
            log.warning("healthz: database: %s", type(error).__name__)
            return SafeJSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return {"status": "ok", "database": engine.dialect.name, "queued": counts.get("queued", 0),
                "running": counts.get("running", 0)}

    return app


def app_factory() -> FastAPI:
    """For `uvicorn api.main:app_factory --factory`: settings from the environment."""
    return create_app(Settings())
