"""/v1/plans: ask for a plan, follow it, cancel it, fetch its files."""

from __future__ import annotations

import csv
import io
import math
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import undefer

from marshrut.engine.solver.bound import relative_gap

from ..access import Access, access_of, scoped
from ..db import ACTIVE, Plan, PlanFile, Region, dumps, loads, utcnow
from ..deps import PlannerAccess, SessionDep, SettingsDep, Viewer
from ..erase import erase_plan
from ..responses import XLSX, attachment
from ..schemas import (
    AssignmentsOut,
    ClustersOut,
    ErrorResponse,
    PlanCreated,
    PlanOut,
    PlanRequest,
    ProgressOut,
    RouteOut,
    Status,
)
from .regions import ERRORS, MALFORMED, owned, valid_id

router = APIRouter(prefix="/v1/plans", tags=["plans"])

NOT_FOUND = {404: {"model": ErrorResponse, "description": "no plan (or teacher) with this id"}}
NOT_READY = {409: {"model": ErrorResponse, "description": "the plan is not done (yet): see its status; or it is "
                                                           "a nation's plan, whose files are its own endpoints'"}}
CSV_DOC = {"description": "JSON, or with ?format=csv the CSV file of docs/plan-files.md",
           "content": {"text/csv": {"schema": {"type": "string"}}}}


def _problem(file: str, message: str, code: str, column: str, value: str | None = None) -> dict:
    return {"file": file, "message": message, "code": code, "row": None, "column": column, "value": value}


def get_plan(session, plan_id: str, *, with_summary: bool = False, nation_ok: bool = False) -> Plan:
    """The plan, if the session's caller may see it; another tenant's is a 404 like a missing one.
    A nation's plan is answered only where `nation_ok` (status, summary, cancel, delete, its own files):
    the region endpoints (assignments, routes, documents...) read a region's files, so 409 there."""
    plan = owned(session, Plan, plan_id, *([undefer(Plan.summary)] if with_summary else []))
    if plan is None:
        raise HTTPException(404, "План не найден (plan not found)")
    if plan.kind == "nation" and not nation_ok:
        raise HTTPException(409, f"Это план страны: его файлы — /v1/plans/{plan.id}/nation.zip и "
                                 f"/v1/plans/{plan.id}/regions/{{region_id}}/files/{{name}} (a nation's plan: "
                                 "see docs/api.md)")
    return plan


def check_job_limit(session, settings, tenant: str) -> None:
    """429 when the tenant already has its share of queued and running jobs."""
    active = session.scalar(select(func.count()).select_from(Plan).where(Plan.tenant == tenant,
                                                                         Plan.status.in_(ACTIVE)))
    if active >= settings.max_jobs_per_tenant:
        raise HTTPException(429, f"У арендатора уже {active} заданий в очереди (the tenant has {active} jobs queued "
                                 f"or running, at most {settings.max_jobs_per_tenant}): повторите позже",
                            headers={"Retry-After": "5"})


def queue_job(request: Request, session, access: Access, plan: Plan, action: str, detail: dict | None = None) -> None:
    """Stores a new job (a plan, a re-plan, a sweep) of the plan's tenant, within its limit, and wakes
    the dispatcher."""
    settings = request.app.state.settings
    try:
        check_job_limit(session, settings, plan.tenant)
    except HTTPException as error:
        access.audit(action, "plan", tenant=plan.tenant, outcome=str(error.status_code), detail=detail)
        raise
    session.add(plan)
    try:
        session.commit()
    except IntegrityError:  # the region (or nation) was deleted meanwhile
        session.rollback()
        raise HTTPException(404, "Страна не найдена (nation not found)" if plan.nation_id else
                            "Регион не найден (region not found)") from None
    access.audit(action, "plan", plan.id, tenant=plan.tenant, detail=detail)
    request.app.state.dispatcher.poke()


def audit_export(session, plan: Plan, what: str, **detail) -> None:
    """An export of personal data (assignments, routes, explanations, documents) goes to the audit."""
    access_of(session).audit("plan.export", "plan", plan.id, tenant=plan.tenant, detail={"what": what, **detail})


def plan_file(session, plan: Plan, name: str) -> bytes:
    if plan.status != "done":
        raise HTTPException(409, f"План ещё не готов (plan is {plan.status})")
    content = session.scalar(select(PlanFile.content).where(PlanFile.plan_id == plan.id, PlanFile.name == name))
    if content is None:  # done plans always have their files; a concurrent delete is the only way here
        raise HTTPException(404, "План не найден (plan not found)")
    return bytes(content)


def export_file(session, plan: Plan, name: str, download_name: str, media_type: str) -> Response:
    """A done plan's stored file as a download, audited as an export."""
    content = plan_file(session, plan, name)
    audit_export(session, plan, name)
    return attachment(content, download_name, media_type)


def csv_rows(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))


def _number(text: str) -> int | float | None:
    if text in ("", None):
        return None
    value = float(text)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def plan_out(plan: Plan, *, summary: bool = True) -> PlanOut:
    progress = loads(plan.progress)
    if progress is not None or plan.status == "running":
        progress = dict(progress or {})
        if plan.status == "running" and plan.started_at is not None:
            progress["elapsed"] = max(progress.get("elapsed") or 0.0, (utcnow() - plan.started_at).total_seconds())
        objective, bound = progress.get("objective"), progress.get("bound")
        if objective is not None and bound is not None:
            progress["gap"] = max(0.0, relative_gap(objective, bound))
        progress = ProgressOut(**{k: v for k, v in progress.items() if k in ProgressOut.model_fields})
    error = loads(plan.error)
    if error is not None:
        error = {"detail": error.get("title", "failed"), **{k: v for k, v in error.items() if k != "title"}}
    return PlanOut(plan_id=plan.id, region_id=plan.region_id, nation_id=plan.nation_id, kind=plan.kind,
                   tenant=plan.tenant, status=plan.status, attempt=plan.attempt,
                   created_at=plan.created_at, started_at=plan.started_at, finished_at=plan.finished_at,
                   progress=progress, params=loads(plan.params),
                   summary=loads(plan.summary) if summary and plan.status == "done" else None, error=error)


def _check_refs(params, ids: dict) -> list[dict]:
    """Pinned and forbidden assignments must name known teachers and resources (checked before queueing)."""
    known = {kind: set(values) for kind, values in ids.items()}
    problems = []
    for field in ("pinned", "forbidden"):
        for i, ref in enumerate(getattr(params, field)):
            if ref.teacher_id not in known["teacher"]:
                problems.append(_problem("params", "неизвестный учитель (unknown teacher)", "unknown_id",
                                         f"params.{field}.{i}.teacher_id", ref.teacher_id))
            if ref.resource_id not in known[ref.kind]:
                problems.append(_problem("params", f"неизвестный ресурс вида {ref.kind} (unknown {ref.kind})",
                                         "unknown_id", f"params.{field}.{i}.resource_id", ref.resource_id))
            if len(problems) >= 1000:
                return problems
    return problems


@router.post("", status_code=202, response_model=PlanCreated,
             summary="Ask for a plan: it is queued and solved in the background",
             responses={**ERRORS, **MALFORMED, 404: {"model": ErrorResponse, "description": "no region with this id"},
                        413: {"model": ErrorResponse, "description": "request body too large"},
                        422: {"model": ErrorResponse, "description": "invalid parameters, each named "
                                                                     "(e.g. `params.time_limit_s`)"}})
def create_plan(body: PlanRequest, request: Request, response: Response, session: SessionDep,
                settings: SettingsDep, access: PlannerAccess) -> PlanCreated:
    """Poll `GET /v1/plans/{plan_id}` until the status is done, failed or cancelled. A tenant may
    have `MARSHRUT_MAX_JOBS_PER_TENANT` jobs queued or running at a time (429 beyond)."""
    region = session.scalar(access.scope(select(Region).options(undefer(Region.ids))
                                         .where(Region.id == body.region_id), Region.tenant)) \
        if valid_id(body.region_id) else None
    if region is None:
        raise HTTPException(404, "Регион не найден (region not found)")
    params = body.params
    problems = []
    if params.time_limit_s > settings.max_time_limit_s:
        problems.append(_problem("params", f"не больше {settings.max_time_limit_s:g} с на этом сервере",
                                 "too_large", "params.time_limit_s", f"{params.time_limit_s:g}"))
    problems += _check_refs(params, loads(region.ids))
    if problems:
        raise HTTPException(422, {"detail": "Ошибки в параметрах плана", "total": len(problems),
                                  "shown": len(problems), "problems": problems})
    plan = Plan(region_id=region.id, tenant=region.tenant, kind="plan", params=dumps(params.model_dump(mode="json")),
                status="queued", attempt=0, created_at=utcnow())
    queue_job(request, session, access, plan, "plan.create", {"region_id": region.id})
    response.headers["Location"] = str(request.url_for("read_plan", plan_id=plan.id))
    return PlanCreated(plan_id=plan.id, status="queued", region_id=region.id)


@router.get("", response_model=list[PlanOut], dependencies=[Viewer], responses=ERRORS,
            summary="List plans, newest first (without their summaries)")
def list_plans(session: SessionDep, region_id: Annotated[str | None, Query(max_length=64)] = None,
               status: Status | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> list[PlanOut]:
    query = scoped(session, select(Plan), Plan.tenant)
    if region_id is not None:
        if not valid_id(region_id):
            return []
        query = query.where(Plan.region_id == region_id)
    if status is not None:
        query = query.where(Plan.status == status)
    plans = session.scalars(query.order_by(Plan.created_at.desc(), Plan.id).limit(limit).offset(offset)).all()
    return [plan_out(plan, summary=False) for plan in plans]


@router.get("/{plan_id}", response_model=PlanOut, dependencies=[Viewer], responses={**ERRORS, **NOT_FOUND},
            summary="Status, progress (elapsed, objective, bound) and, once done, the summary")
def read_plan(plan_id: str, session: SessionDep) -> PlanOut:
    return plan_out(get_plan(session, plan_id, with_summary=True, nation_ok=True))


@router.delete("/{plan_id}", response_model=PlanOut,
               responses={**ERRORS, **NOT_FOUND, 204: {"description": "a finished plan was deleted"}},
               summary="Cancel a queued or running plan; delete a finished one")
def cancel_plan(plan_id: str, request: Request, session: SessionDep, access: PlannerAccess) -> PlanOut | Response:
    """A queued or running plan is cancelled (200, its solver is stopped at once). A plan that is
    already done, failed or cancelled is deleted with its files (204)."""
    plan = get_plan(session, plan_id, nation_ok=True)
    if plan.status in ACTIVE:
        session.execute(update(Plan).where(Plan.id == plan.id, Plan.status.in_(ACTIVE)).values(
            status="cancelled", finished_at=utcnow(), owner=None, heartbeat_at=None))
        session.commit()
        request.app.state.dispatcher.poke()
        access.audit("plan.cancel", "plan", plan.id, tenant=plan.tenant)
        session.expunge_all()
        # cancelled now, or finished (or deleted) just before: report what it is
        return plan_out(get_plan(session, plan_id, nation_ok=True), summary=False)
    erased = erase_plan(session, plan)
    access.audit("plan.delete", "plan", plan.id, tenant=plan.tenant, detail=erased)
    return Response(status_code=204)


@router.get("/{plan_id}/summary", response_model=dict, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY}, summary="summary.json (docs/plan-files.md)")
def read_summary(plan_id: str, session: SessionDep) -> Response:
    plan = get_plan(session, plan_id, nation_ok=True)
    return Response(plan_file(session, plan, "summary.json"), media_type="application/json")


@router.get("/{plan_id}/assignments", response_model=AssignmentsOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY, 200: CSV_DOC},
            summary="The assignments: JSON, or assignments.csv with ?format=csv")
def read_assignments(plan_id: str, session: SessionDep,
                     format: Literal["json", "csv"] = "json") -> AssignmentsOut | Response:
    plan = get_plan(session, plan_id)
    content = plan_file(session, plan, "assignments.csv")
    audit_export(session, plan, "assignments", format=format)
    if format == "csv":
        return attachment(content, f"assignments-{plan.id}.csv")
    rows = csv_rows(content)
    for row in rows:
        row["hours"], row["cost_rub"] = _number(row["hours"]), _number(row["cost_rub"])
    return AssignmentsOut(plan_id=plan.id, total=len(rows), assignments=rows)


@router.get("/{plan_id}/routes/{teacher_id}", response_model=RouteOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY}, summary="One teacher's route, step by step")
def read_route(plan_id: str, teacher_id: str, session: SessionDep) -> RouteOut:
    plan = get_plan(session, plan_id)
    routes = plan_file(session, plan, "routes.csv")
    clusters = {row["teacher_id"]: row for row in csv_rows(plan_file(session, plan, "clusters.csv"))}
    if teacher_id not in clusters:  # clusters.csv lists every teacher of the region
        raise HTTPException(404, "Учитель не найден в регионе плана (teacher not found)")
    audit_export(session, plan, "route", teacher_id=teacher_id)
    steps = [row for row in csv_rows(routes) if row["teacher_id"] == teacher_id]
    need = {}
    for row in steps:
        row.pop("teacher_id")
        row["step"] = int(row["step"])
        row["hours"], row["cost_rub"] = _number(row["hours"]), _number(row["cost_rub"])
        row["addresses"] = [c for c in row.get("addresses", "").split(";") if c]
        need = {k: _number(row.pop(k)) for k in ("need_total", "need_covered", "need_after") if k in row}
    member = clusters[teacher_id]
    return RouteOut(plan_id=plan.id, teacher_id=teacher_id, cluster=_number(member.get("cluster", "")),
                    profile=member.get("profile") or None, steps=steps, **need)


@router.get("/{plan_id}/clusters", response_model=ClustersOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY, 200: CSV_DOC},
            summary="Deficit profiles and each teacher's cluster (clusters.csv with ?format=csv)")
def read_clusters(plan_id: str, session: SessionDep,
                  format: Literal["json", "csv"] = "json") -> ClustersOut | Response:
    plan = get_plan(session, plan_id, with_summary=True)
    content = plan_file(session, plan, "clusters.csv")
    audit_export(session, plan, "clusters", format=format)
    if format == "csv":
        return attachment(content, f"clusters-{plan.id}.csv")
    rows = csv_rows(content)
    for row in rows:
        row["cluster"] = int(row["cluster"])
    return ClustersOut(plan_id=plan.id, profiles=(loads(plan.summary) or {}).get("profiles", []), teachers=rows)


@router.get("/{plan_id}/export.xlsx", dependencies=[Viewer], response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                       200: {"description": "plan.xlsx, the planner's workbook: Сводка, Маршруты, Назначения, "
                                            "Муниципалитеты, Ресурсы, Профили, Причины",
                             "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}},
            summary="The whole plan as an Excel workbook")
def export_xlsx(plan_id: str, session: SessionDep) -> Response:
    plan = get_plan(session, plan_id)
    return export_file(session, plan, "plan.xlsx", f"plan-{plan.id}.xlsx", XLSX)
