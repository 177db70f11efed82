"""/v1/plans/{id}/explain, /replan, /fit, /sweep: why this plan, change it, fit a newcomer, what if.

Explanations are computed once per plan (from the stored bundle, the plan's parameters and its
assignments.csv) and stored with the plan's files as explain.csv and explain_totals.csv.
Re-planning and sweeps solve, so they are jobs in the plans' queue (api/worker.py): a re-plan is a
new plan (kind `replan`) whose files are served like any other plan's, a sweep a job (kind
`sweep`) whose table and chart are read once it is done.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from marshrut.engine import params_from_dict
from marshrut.engine.changes import Changes, NewTeacher

from ..db import Plan, PlanFile, Region, dumps, loads, utcnow
from ..deps import PlannerAccess, SessionDep, SettingsDep, Viewer
from ..erase import register_eraser
from ..responses import attachment
from ..schemas import ErrorResponse
from .plans import NOT_FOUND, NOT_READY, audit_export, csv_rows, get_plan, plan_file, queue_job
from .regions import ERRORS

router = APIRouter(prefix="/v1/plans", tags=["what-if"])

CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}}


# ---- bodies ------------------------------------------------------------------------------------

class ReasonOut(BaseModel):
    group: str = Field(description="no_option | taken | money | teacher_full | cost | improvable")
    needs: int = Field(description="uncovered needs (teacher, competency) with this reason")
    need_left: float = Field(description="need left uncovered, summed")


class ExplainOut(BaseModel):
    plan_id: str
    assignments: int = Field(description="rows explaining assignments (one per competency addressed)")
    uncovered: int = Field(description="needs left uncovered (need > 0, cover < 1)")
    reasons: dict[str, ReasonOut] = Field(description="over the region, by reason")
    totals: list[dict] = Field(description="explain_totals.csv: scope (region | municipality | competency), "
                                           "scope_id, reason_group, reason, needs, need_left")


class TeacherExplainOut(BaseModel):
    plan_id: str
    teacher_id: str
    assignments: list[dict] = Field(description="what each assignment covers: competency, weight, cover_added, "
                                                "need_closed")
    uncovered: list[dict] = Field(description="each need left uncovered, its reason and detail")


class ReplanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "changes": {"remove_mentors": ["MEN001"], "cancel_sessions": ["SS0003"], "budget_scale": 0.9},
        "keep_bonus": 0.1, "time_limit_s": 20}]})
    changes: Changes
    keep_bonus: float = Field(0.1, ge=0, le=1e6, description="points an assignment must gain to be moved")
    time_limit_s: float | None = Field(None, gt=0, le=86400, description="default: the plan's time_limit_s")


class JobCreated(BaseModel):
    plan_id: str = Field(description="the job: follow it with GET /v1/plans/{plan_id}")
    kind: Literal["replan", "sweep", "documents"]
    status: Literal["queued"] = "queued"
    region_id: str
    previous_plan_id: str = Field(description="the plan it starts from")


class ReplanOut(BaseModel):
    plan_id: str = Field(description="the new plan (done): its files are served like any plan's")
    previous_plan_id: str
    report: dict = Field(description="counts: kept, dropped and added by reason, teachers changed, objective")
    changed: list[dict] = Field(description="changes.csv: change, teacher_id, kind, resource_id, reason, detail")


class FitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    teacher: NewTeacher
    top: int = Field(5, ge=1, le=50)


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    what: Literal["budget", "vouchers", "seats"] = "budget"
    factors: str = Field("0.5x..2x", max_length=500, description="a range `0.5x..2x` or a list `0.5x,1x,2x`")
    points: int = Field(5, ge=2, le=15, description="points of a range")
    time_limit_s: float | None = Field(None, gt=0, le=86400, description="per point; default: the plan's")


# ---- shared helpers ----------------------------------------------------------------------------

_regions: OrderedDict[str, object] = OrderedDict()
_regions_lock = threading.Lock()


@register_eraser
def _forget_region(region_id: str, _plan_ids: list[str]) -> dict:
    with _regions_lock:
        return {"cached_regions": 1} if _regions.pop(region_id, None) is not None else {}


def load_region(session, plan: Plan):
    """The plan's region as RegionData; the last few are kept in memory (fit must be fast)."""
    from marshrut.engine import load_upload

    key = plan.region_id
    with _regions_lock:
        if key in _regions:
            _regions.move_to_end(key)
            return _regions[key]
    row = session.scalar(select(Region).where(Region.id == plan.region_id))
    if row is None:
        raise HTTPException(404, "Регион плана не найден (region not found)")
    region = load_upload(bytes(row.content), row.filename)
    with _regions_lock:
        _regions[key] = region
        while len(_regions) > 3:
            _regions.popitem(last=False)
    return region


def _params(plan: Plan, time_limit_s: float | None = None, settings=None):
    params = params_from_dict(loads(plan.params))
    if time_limit_s is not None:
        if settings is not None and time_limit_s > settings.max_time_limit_s:
            raise HTTPException(422, {"detail": "Ошибки в параметрах", "total": 1, "shown": 1, "problems": [{
                "file": "request", "message": f"не больше {settings.max_time_limit_s:g} с на этом сервере",
                "code": "too_large", "row": None, "column": "time_limit_s", "value": f"{time_limit_s:g}"}]})
        params = params.model_copy(update={"time_limit_s": time_limit_s})
    return params


def _stored(session, plan_id: str, name: str) -> bytes | None:
    content = session.scalar(select(PlanFile.content).where(PlanFile.plan_id == plan_id, PlanFile.name == name))
    return None if content is None else bytes(content)


def _store(session, plan_id: str, files: dict[str, bytes]) -> None:
    try:
        session.add_all(PlanFile(plan_id=plan_id, name=name, content=content) for name, content in files.items())
        session.commit()
    except IntegrityError:  # computed by a concurrent request too: theirs is the same
        session.rollback()


def explanation_files(session, plan: Plan) -> tuple[bytes, bytes]:
    """explain.csv and explain_totals.csv of a done plan: stored ones, or computed and stored now."""
    plan_file(session, plan, "assignments.csv")  # 409 unless done
    explain, totals = _stored(session, plan.id, "explain.csv"), _stored(session, plan.id, "explain_totals.csv")
    if explain is not None and totals is not None:
        return explain, totals
    from marshrut.engine.explain import explain_assignments

    region = load_region(session, plan)
    assignments = pd.read_csv(io.BytesIO(plan_file(session, plan, "assignments.csv")), dtype=str,
                              keep_default_na=False)
    explanation = explain_assignments(region, _params(plan), assignments)
    explain = explanation.frame().to_csv(index=False, lineterminator="\n").encode("utf-8")
    totals = explanation.totals.to_csv(index=False, lineterminator="\n").encode("utf-8")
    _store(session, plan.id, {"explain.csv": explain, "explain_totals.csv": totals})
    return explain, totals


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    out = frame[columns].astype(object).where(frame[columns].notna(), None)
    return out.to_dict(orient="records")


# ---- explain -----------------------------------------------------------------------------------

@router.get("/{plan_id}/explain", response_model=ExplainOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY, 200: {"description": "JSON, or explain.csv with "
                                                                                "?format=csv", **CSV}},
            summary="Why this plan: reasons for uncovered needs, totals per municipality and competency")
def read_explain(plan_id: str, session: SessionDep,
                 format: Literal["json", "csv", "totals_csv"] = "json") -> ExplainOut | Response:
    """Each uncovered need's reason is computed from the plan: no option (nothing addresses it, or
    nothing within travel), taken (which capacity, by whom), money (voucher, municipal or regional
    budget), the teacher's hours or dates, or cost. `?format=csv` gives explain.csv (assignment
    rows too), `?format=totals_csv` explain_totals.csv."""
    plan = get_plan(session, plan_id)
    explain, totals = explanation_files(session, plan)
    audit_export(session, plan, "explain", format=format)
    if format != "json":
        content, name = (explain, "explain") if format == "csv" else (totals, "explain_totals")
        return attachment(content, f"{name}-{plan.id}.csv")
    frame = pd.read_csv(io.BytesIO(explain), dtype={"teacher_id": str, "resource_id": str}, keep_default_na=False)
    total_rows = pd.read_csv(io.BytesIO(totals), keep_default_na=False, dtype={"scope_id": str})
    region_rows = total_rows[total_rows["scope"] == "region"]
    reasons = {r.reason: ReasonOut(group=r.reason_group, needs=int(r.needs), need_left=float(r.need_left))
               for r in region_rows.itertuples()}
    return ExplainOut(plan_id=plan.id, assignments=int((frame["row"] == "assignment").sum()),
                      uncovered=int((frame["row"] == "uncovered").sum()), reasons=reasons,
                      totals=total_rows.to_dict(orient="records"))


@router.get("/{plan_id}/explain/{teacher_id}", response_model=TeacherExplainOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY}, summary="One teacher: what each step gives, why "
                                                                    "each need left is left")
def read_teacher_explain(plan_id: str, teacher_id: str, session: SessionDep) -> TeacherExplainOut:
    plan = get_plan(session, plan_id)
    explain, _ = explanation_files(session, plan)
    clusters = {row["teacher_id"] for row in csv_rows(plan_file(session, plan, "clusters.csv"))}
    if teacher_id not in clusters:
        raise HTTPException(404, "Учитель не найден в регионе плана (teacher not found)")
    audit_export(session, plan, "explain", teacher_id=teacher_id)
    frame = pd.read_csv(io.BytesIO(explain), dtype={"teacher_id": str, "resource_id": str}, keep_default_na=False)
    mine = frame[frame["teacher_id"] == teacher_id]
    assignments = mine[mine["row"] == "assignment"]
    uncovered = mine[mine["row"] == "uncovered"]
    return TeacherExplainOut(
        plan_id=plan.id, teacher_id=teacher_id,
        assignments=_rows(assignments, ["kind", "resource_id", "competency_id", "need", "weight", "cover_added",
                                        "need_closed", "cover"]),
        uncovered=_rows(uncovered, ["competency_id", "need", "cover", "need_left", "reason", "reason_group",
                                    "detail", "kind", "resource_id", "blockers"]))


# ---- fit ---------------------------------------------------------------------------------------

@router.post("/{plan_id}/fit", response_model=dict, dependencies=[Viewer],
             responses={**ERRORS, **NOT_FOUND, **NOT_READY},
             summary="Best few routes for a new teacher now, without moving anyone")
def fit(plan_id: str, body: FitRequest, session: SessionDep) -> dict:
    """Ranked by value in the plan's objective (need covered - cost / rub_per_point), each with its
    gain, cost and steps; only seats, places and money the plan leaves free are used."""
    from marshrut.engine.explain import plan_indices
    from marshrut.engine.fit import fit_teacher
    from marshrut.engine.options import build_activities

    plan = get_plan(session, plan_id)
    assignments = pd.read_csv(io.BytesIO(plan_file(session, plan, "assignments.csv")), dtype=str,
                              keep_default_na=False)
    region = load_region(session, plan)
    acts = build_activities(region)
    t, a = plan_indices(region, acts, assignments)
    result = fit_teacher(region, _params(plan), t, a, body.teacher, top=body.top, activities=acts)
    return {"plan_id": plan.id, **result.as_dict()}


# ---- replan ------------------------------------------------------------------------------------

def _finished_job(session, plan_id: str, kind: str) -> Plan:
    plan = get_plan(session, plan_id, with_summary=True)
    if plan.kind != kind:
        raise HTTPException(404, f"Это не задание вида {kind} (not a {kind} job)")
    if plan.status != "done":
        raise HTTPException(409, f"Задание ещё не готово (the job is {plan.status})")
    return plan


@router.post("/{plan_id}/replan", status_code=202, response_model=JobCreated,
             responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                        422: {"model": ErrorResponse, "description": "unknown ids in the changes, each named"},
                        429: {"model": ErrorResponse, "description": "the tenant has its limit of jobs queued"}},
             summary="Re-plan after changes (mentor ill, session cancelled, budget cut, new teachers): queued")
def replan(plan_id: str, body: ReplanRequest, request: Request, response: Response, session: SessionDep,
           settings: SettingsDep, access: PlannerAccess) -> JobCreated:
    """Keeps every still-valid assignment unless moving it gains at least `keep_bonus` points. The
    re-plan is a new plan, solved in the queue like any plan (progress, cancel, survives a restart):
    follow `GET /v1/plans/{plan_id}`, then `GET /v1/plans/{plan_id}/replan` for what changed and why."""
    from marshrut.engine.changes import apply_changes

    plan = get_plan(session, plan_id)
    plan_file(session, plan, "assignments.csv")  # 409 unless done
    params = _params(plan, body.time_limit_s, settings)
    apply_changes(load_region(session, plan), body.changes)  # unknown ids: 422 now, before any solve
    return queue_replan(request, response, session, access, plan, body.changes.model_dump(mode="json"), params,
                        body.keep_bonus)


def queue_replan(request: Request, response: Response, session, access, plan: Plan, changes: dict, params,
                 keep_bonus: float) -> JobCreated:
    """Queues a re-plan of `plan` (a new plan of kind replan) with these changes and parameters."""
    job = {"previous_plan_id": plan.id, "changes": changes, "keep_bonus": keep_bonus}
    new = Plan(region_id=plan.region_id, tenant=plan.tenant, kind="replan", job=dumps(job),
               params=dumps(params.model_dump(mode="json")), status="queued", attempt=0, created_at=utcnow())
    queue_job(request, session, access, new, "plan.replan", {"previous_plan_id": plan.id})
    response.headers["Location"] = str(request.url_for("read_plan", plan_id=new.id))
    return JobCreated(plan_id=new.id, kind="replan", status="queued", region_id=plan.region_id,
                      previous_plan_id=plan.id)


@router.get("/{plan_id}/replan", response_model=ReplanOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY}, summary="A finished re-plan: what changed and why")
def read_replan(plan_id: str, session: SessionDep) -> ReplanOut:
    plan = _finished_job(session, plan_id, "replan")
    summary = loads(plan.summary) or {}
    changed = csv_rows(plan_file(session, plan, "changes.csv"))
    audit_export(session, plan, "changes")
    return ReplanOut(plan_id=plan.id, previous_plan_id=loads(plan.job)["previous_plan_id"],
                     report=summary.get("replan", {}), changed=changed)


# ---- sweep -------------------------------------------------------------------------------------

@router.post("/{plan_id}/sweep", status_code=202, response_model=JobCreated,
             responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                        429: {"model": ErrorResponse, "description": "the tenant has its limit of jobs queued"}},
             summary="What if budgets, vouchers or seats scale: queued; need covered and marginal value per rouble")
def sweep(plan_id: str, body: SweepRequest, request: Request, response: Response, session: SessionDep,
          settings: SettingsDep, access: PlannerAccess) -> JobCreated:
    """Solves of the plan's region with its parameters in order of the factor, each from its
    neighbour's plan and prices, within 2.3 times the time limit in all, as one job in the queue
    (progress `sweep i/n`, cancel, survives a restart). Follow `GET /v1/plans/{plan_id}` of the job,
    then `GET /v1/plans/{plan_id}/sweep` (`?format=csv | png`). The curve never goes down; the
    marginal value is the slope of need covered per rouble (per million in `..._per_million_rub`)
    or per seat, and `price_objective` the price of the scaled rows at the point's bound."""
    from marshrut.engine.sweep import parse_factors

    plan = get_plan(session, plan_id)
    params = _params(plan, body.time_limit_s, settings)
    factors = parse_factors(body.factors, body.points)  # a bad range: InputError, answered as 422
    if len(factors) > 15:
        raise HTTPException(422, {"detail": "Не больше 15 точек (at most 15 points)", "total": 1, "shown": 1,
                                  "problems": [{"file": "request", "message": "не больше 15 точек", "code": "too_large",
                                                "row": None, "column": "factors", "value": body.factors[:200]}]})
    job = {"source_plan_id": plan.id, "what": body.what, "factors": [float(f) for f in factors]}
    new = Plan(region_id=plan.region_id, tenant=plan.tenant, kind="sweep", job=dumps(job),
               params=dumps(params.model_dump(mode="json")), status="queued", attempt=0, created_at=utcnow())
    queue_job(request, session, access, new, "plan.sweep", {"source_plan_id": plan.id, "points": len(factors)})
    response.headers["Location"] = str(request.url_for("read_plan", plan_id=new.id))
    return JobCreated(plan_id=new.id, kind="sweep", status="queued", region_id=plan.region_id,
                      previous_plan_id=plan.id)


@router.get("/{plan_id}/sweep", response_model=dict, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                       200: {"description": "JSON (rows and a PNG as base64), or ?format=csv | png",
                             "content": {"text/csv": {"schema": {"type": "string"}},
                                         "image/png": {"schema": {"type": "string", "format": "binary"}}}}},
            summary="A finished sweep: need covered and marginal value per point")
def read_sweep(plan_id: str, session: SessionDep,
               format: Annotated[Literal["json", "csv", "png"], Query()] = "json") -> dict | Response:
    plan = _finished_job(session, plan_id, "sweep")
    if format == "csv":
        return Response(plan_file(session, plan, "sweep.csv"), media_type="text/csv; charset=utf-8")
    png = plan_file(session, plan, "sweep.png")
    if format == "png":
        return Response(png, media_type="image/png")
    summary = loads(plan.summary) or {}
    return {"plan_id": plan.id, "source_plan_id": loads(plan.job)["source_plan_id"], "what": summary.get("what"),
            "points": summary.get("points", []), "png_base64": base64.b64encode(png).decode()}
