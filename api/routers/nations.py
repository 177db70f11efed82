"""/v1/nations: upload a nation (SPEC §7: region bundles tied by federal resources), list, read and
delete it, and plan it as a job of the queue; a nation's plan files under /v1/plans/{plan_id}/.

A nation is handled as a region is: validated whole on upload (422 listing every problem, a region's
as `<region_id>/<file>`), stored per tenant (another tenant's is a 404), deleted with its plans and
their files, every step audited. Its plan is a job (kind `nation`) of the same queue: followed,
cancelled and deleted at /v1/plans/{plan_id}, counted in the tenant's jobs, its time limit the
request's wall clock.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile
from sqlalchemy import func, select
from sqlalchemy.orm import undefer

from marshrut.engine.nation import load_nation_upload, nation_params, regional_view
from marshrut.engine.problems import BundleError, InputError

from ..db import Nation, Plan, dumps, loads, utcnow
from ..deps import PlannerAccess, SessionDep, SettingsDep, Viewer
from ..erase import erase_nation
from ..responses import attachment
from ..schemas import ErrorResponse, NationOut, NationPlanRequest, PlanCreated
from .plans import NOT_READY, audit_export, export_file, get_plan, plan_file, queue_job
from .regions import ERRORS, MALFORMED, accept_upload, clean_text, owned, problems_exception, with_plan_counts
from .web import FILE_TYPES

router = APIRouter(tags=["nations"])

NOT_FOUND = {404: {"model": ErrorResponse, "description": "no nation with this id"}}
PLAN_NOT_FOUND = {404: {"model": ErrorResponse, "description": "no nation's plan (or region, or file) with this id"}}
ZIP = "application/zip"


def nation_out(nation: Nation, plans: int = 0) -> NationOut:
    return NationOut(nation_id=nation.id, name=nation.name, filename=nation.filename, size_bytes=nation.size_bytes,
                     sha256=nation.sha256, created_at=nation.created_at, plans=plans, **loads(nation.counts))


def get_nation(session, nation_id: str, *, with_ids: bool = False) -> Nation:
    """The nation, if the session's caller may see it; another tenant's is a 404 like a missing one."""
    nation = owned(session, Nation, nation_id, *([undefer(Nation.ids)] if with_ids else []))
    if nation is None:
        raise HTTPException(404, "Страна не найдена (nation not found)")
    return nation


def store_nation(session, content: bytes, filename: str, *, tenant: str) -> Nation:
    """Validates a nation (every problem of every file of every region at once, as a 422) and stores it."""
    try:
        data = load_nation_upload(content, filename)
    except BundleError as error:
        raise problems_exception(error) from None
    counts = {**data.counts(), "region_list": [{"region_id": rid, "name": name, "teachers": len(region.teachers)}
                                               for rid, name, region in zip(data.region_ids, data.region_names,
                                                                            data.regions)]}
    ids = {}
    for r, region_id in enumerate(data.region_ids):  # federal sessions it may take are its program sessions
        region = regional_view(data, r).region
        ids[region_id] = {"teacher": list(region.teachers.ids), "mentor": list(region.mentors.ids),
                          "internship": list(region.site_sessions.ids), "program": list(region.program_sessions.ids)}
    nation = Nation(tenant=tenant, name=clean_text(data.name, 500) or filename, filename=filename,
                    size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest(), counts=dumps(counts),
                    ids=dumps(ids), content=content, created_at=utcnow())
    session.add(nation)
    session.commit()
    return nation


@router.post("/v1/nations", status_code=201, response_model=NationOut,
             summary="Upload a nation (.zip of the nation's folder: nation.json, federal files, region folders)",
             responses={**ERRORS, **MALFORMED,
                        413: {"model": ErrorResponse, "description": "upload or unpacked archive too large"},
                        422: {"model": ErrorResponse, "description": "the nation has problems: all of them, listed "
                                                                     "(a region's files as `<region_id>/<file>`)"}})
def upload_nation(
    file: Annotated[UploadFile, File(description="a .zip of the nation's folder (docs/nation.md)")],
    request: Request, response: Response, session: SessionDep, settings: SettingsDep, access: PlannerAccess,
) -> NationOut:
    """Validates the nation (every problem at once, as 422) and stores it, as the key's tenant's."""
    return nation_out(accept_upload(file, request, response, session, settings, access, "nation", store_nation))


@router.get("/v1/nations", response_model=list[NationOut], dependencies=[Viewer], responses=ERRORS,
            summary="List nations, newest first")
def list_nations(session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> list[NationOut]:
    return [nation_out(nation, n) for nation, n in with_plan_counts(session, Nation, Plan.nation_id, limit, offset)]


@router.get("/v1/nations/{nation_id}", response_model=NationOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND}, summary="A nation's name, counts and regions")
def read_nation(nation_id: str, session: SessionDep) -> NationOut:
    nation = get_nation(session, nation_id)
    plans = session.scalar(select(func.count()).select_from(Plan).where(Plan.nation_id == nation.id))
    return nation_out(nation, plans)


@router.delete("/v1/nations/{nation_id}", status_code=204, responses={**ERRORS, **NOT_FOUND},
               summary="Delete a nation: its bundle, its plans and their files (running solves are stopped)")
def delete_nation(nation_id: str, request: Request, session: SessionDep, access: PlannerAccess) -> Response:
    nation = get_nation(session, nation_id)
    erased = erase_nation(request.app, session, nation)
    access.audit("nation.delete", "nation", nation.id, tenant=nation.tenant, detail=erased)
    return Response(status_code=204)


def _reference_problems(raw: dict, ids: dict) -> list[dict]:
    """Pinned and forbidden entries must name teachers and resources of their region (checked before
    queueing, as a region's plan does); federal sessions count as the program sessions of the
    regions that may take them."""
    problems = []
    for field in ("pinned", "forbidden"):
        for i, entry in enumerate(raw.get(field) or []):
            known = ids[entry["region_id"]]
            for key, kind in (("teacher_id", "teacher"), ("resource_id", entry["kind"])):
                if entry[key] not in known[kind]:
                    problems.append({"file": "params", "message": f"нет в регионе {entry['region_id']} (unknown "
                                                                  f"{kind} of the region)", "code": "unknown_id",
                                     "row": None, "column": f"params.{field}.{i}.{key}", "value": entry[key]})
    return problems[:1000]


@router.post("/v1/nations/{nation_id}/plans", status_code=202, response_model=PlanCreated,
             summary="Ask for a nation's plan: it is queued and solved in the background",
             responses={**ERRORS, **MALFORMED, **NOT_FOUND,
                        413: {"model": ErrorResponse, "description": "request body too large"},
                        422: {"model": ErrorResponse, "description": "invalid parameters, each named"}})
def create_nation_plan(nation_id: str, body: NationPlanRequest, request: Request, response: Response,
                       session: SessionDep, settings: SettingsDep, access: PlannerAccess) -> PlanCreated:
    """Poll `GET /v1/plans/{plan_id}` until the status is done, failed or cancelled: its progress has
    the nation's objective and bound, the round, and each region's pricing. The regions are solved in
    the solver process, or on the Ray cluster of MARSHRUT_RAY_ADDRESS. A nation's plan counts as one
    of the tenant's `MARSHRUT_MAX_JOBS_PER_TENANT` jobs."""
    nation = get_nation(session, nation_id, with_ids=True)
    ids = loads(nation.ids)
    try:
        params = nation_params(body.params, tuple(ids))
    except InputError as error:  # every problem, named as a region plan's are: `params.<field>`
        problems = [{**p.as_dict(), "column": f"params.{p.column}" if p.column else "params"} for p in error.problems]
        raise HTTPException(422, {"detail": error.title, "total": error.total, "shown": len(problems),
                                  "problems": problems}) from None
    problems = []
    if params.params.time_limit_s > settings.max_time_limit_s:
        problems.append({"file": "params", "message": f"не больше {settings.max_time_limit_s:g} с на этом сервере",
                         "code": "too_large", "row": None, "column": "params.time_limit_s",
                         "value": f"{params.params.time_limit_s:g}"})
    # In the order given, so that a problem's entry number is the caller's.
    refs = {kind: [{**ref.model_dump(mode="json"), "region_id": region_id} for region_id, ref in params.entries(kind)]
            for kind in ("pinned", "forbidden")}
    problems += _reference_problems(refs, ids)
    if problems:
        raise HTTPException(422, {"detail": "Ошибки в параметрах плана", "total": len(problems),
                                  "shown": len(problems), "problems": problems})
    stored = {**params.params.model_dump(mode="json"), **refs}
    plan = Plan(region_id=None, nation_id=nation.id, tenant=nation.tenant, kind="nation", params=dumps(stored),
                status="queued", attempt=0, created_at=utcnow())
    queue_job(request, session, access, plan, "plan.create", {"nation_id": nation.id})
    response.headers["Location"] = str(request.url_for("read_plan", plan_id=plan.id))
    return PlanCreated(plan_id=plan.id, status="queued", nation_id=nation.id)


# ---- a nation's plan files ------------------------------------------------------------------------

def _nation_plan(session, plan_id: str) -> Plan:
    plan = get_plan(session, plan_id, nation_ok=True)
    if plan.kind != "nation":
        raise HTTPException(409, "Это план региона, не страны (a region's plan: see its own endpoints)")
    return plan


@router.get("/v1/plans/{plan_id}/nation.zip", tags=["plans"], dependencies=[Viewer], response_class=Response,
            responses={**ERRORS, **PLAN_NOT_FOUND, **NOT_READY,
                       200: {"description": "the nation's plan folder as `marshrut plan NATION` writes it: "
                                            "summary.json and regions/<region_id>/ (docs/nation.md)",
                             "content": {ZIP: {"schema": {"type": "string", "format": "binary"}}}}},
            summary="A nation's whole plan as a .zip")
def nation_zip(plan_id: str, session: SessionDep) -> Response:
    plan = _nation_plan(session, plan_id)
    return export_file(session, plan, "nation.zip", f"nation-plan-{plan.id}.zip", ZIP)


@router.get("/v1/plans/{plan_id}/regions/{region_id}/files/{name}", tags=["plans"], dependencies=[Viewer],
            response_class=Response,
            responses={**ERRORS, **PLAN_NOT_FOUND, **NOT_READY,
                       200: {"description": "the region's file of the nation's plan (docs/plan-files.md)"}},
            summary="A region's plan file of a nation's plan: assignments.csv, routes.csv, clusters.csv, "
                    "summary.json, plan.xlsx")
def nation_region_file(plan_id: str, region_id: str, name: str, session: SessionDep) -> Response:
    plan = _nation_plan(session, plan_id)
    if name not in FILE_TYPES:
        raise HTTPException(404, "Нет такого файла плана (unknown plan file)")
    with zipfile.ZipFile(io.BytesIO(plan_file(session, plan, "nation.zip"))) as archive:
        try:
            content = archive.read(f"regions/{region_id}/{name}")
        except KeyError:
            raise HTTPException(404, "Нет такого региона в плане страны (no such region in the nation's plan)") \
                from None
    audit_export(session, plan, name, region_id=region_id)
    stem, _, ext = name.rpartition(".")
    return attachment(content, f"{stem}-{plan.id}.{ext}", FILE_TYPES[name])
