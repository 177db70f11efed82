"""/v1/regions: upload a bundle, list, read and delete regions."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile
from sqlalchemy import func, select

from marshrut.engine import BundleError, load_upload

from ..access import access_of, scoped
from ..db import Plan, Region, dumps, loads, utcnow
from ..deps import PlannerAccess, SessionDep, SettingsDep, Viewer
from ..erase import erase_region
from ..schemas import ErrorResponse, RegionOut

router = APIRouter(prefix="/v1/regions", tags=["regions"])

ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ERRORS = {401: {"model": ErrorResponse, "description": "no or unknown API key"},
          403: {"model": ErrorResponse, "description": "the key's role may not do this"},
          422: {"model": ErrorResponse, "description": "invalid parameters, each named in `problems`"}}
MALFORMED = {400: {"model": ErrorResponse, "description": "a body that cannot be parsed at all"}}
NOT_FOUND = {404: {"model": ErrorResponse, "description": "no region with this id"}}


def valid_id(value: str) -> bool:
    """Ids are 32 hex digits; anything else is unknown without asking the database."""
    return bool(ID_PATTERN.fullmatch(value))


def owned(session, model, object_id: str, *options):
    """The region, plan or nation with this id if the session's caller may see it (its tenant's, or
    any for an admin), else None; `options` as select().options takes them."""
    if not valid_id(object_id):
        return None
    query = access_of(session).scope(select(model).where(model.id == object_id), model.tenant)
    return session.scalar(query.options(*options))


def clean_text(value: str | None, limit: int) -> str:
    text = _CONTROL.sub("", value or "")
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return text.strip()[:limit]


def problems_exception(error: BundleError) -> HTTPException:
    body = error.as_dict()
    codes = {p["code"] for p in body["problems"]}
    # an archive that unpacks into too much is a too-large upload, whatever its packed size
    status = 413 if codes and codes <= {"archive_too_large"} else 422
    return HTTPException(status, {"detail": body.pop("title"), **body})


def region_out(region: Region, plans: int = 0) -> RegionOut:
    return RegionOut(region_id=region.id, name=region.name, filename=region.filename, size_bytes=region.size_bytes,
                     sha256=region.sha256, created_at=region.created_at, plans=plans, **loads(region.counts))


def get_region(session, region_id: str) -> Region:
    """The region, if the session's caller may see it; another tenant's is a 404 like a missing one."""
    access = access_of(session)
    region = session.get(Region, region_id) if valid_id(region_id) else None
    if region is None or not access.sees(region.tenant):
        raise HTTPException(404, "Регион не найден (region not found)")
    return region


def accept_upload(file: UploadFile, request: Request, response: Response, session, settings, access, kind: str,
                  store):
    """An upload of a `kind` (region, nation) read within the limit (413), validated and stored by
    `store(session, content, filename, tenant=...)`, audited as `<kind>.upload` however it ends; the
    answer's Location is its `read_<kind>` route."""
    content = file.file.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        access.audit(f"{kind}.upload", kind, outcome="413", detail={"bytes": len(content)})
        raise HTTPException(413, f"Файл больше {settings.max_upload_bytes} байт (upload too large)")
    filename = clean_text(file.filename, 255) or "upload"
    try:
        stored = store(session, content, filename, tenant=access.tenant)
    except HTTPException as error:
        access.audit(f"{kind}.upload", kind, outcome=str(error.status_code), detail={"bytes": len(content)})
        raise
    access.audit(f"{kind}.upload", kind, stored.id, detail={"bytes": len(content), "sha256": stored.sha256})
    response.headers["Location"] = str(request.url_for(f"read_{kind}", **{f"{kind}_id": stored.id}))
    return stored


def with_plan_counts(session, model, plan_column, limit: int, offset: int) -> list[tuple]:
    """The caller's tenant's regions or nations (`model`), newest first, each with its number of plans."""
    plans = select(plan_column, func.count().label("n")).group_by(plan_column).subquery()
    query = select(model, func.coalesce(plans.c.n, 0)).outerjoin(plans, plans.c[plan_column.key] == model.id)
    return session.execute(scoped(session, query, model.tenant)
                           .order_by(model.created_at.desc(), model.id).limit(limit).offset(offset)).all()


def store_region(session, content: bytes, filename: str, name: str | None = None, *, tenant: str) -> Region:
    """Validates a bundle (every problem at once, as a 422) and stores it with its counts and ids."""
    try:
        data = load_upload(content, filename)
    except BundleError as error:
        raise problems_exception(error) from None
    ids = {"teacher": list(data.teachers.ids), "mentor": list(data.mentors.ids),
           "internship": list(data.site_sessions.ids), "program": list(data.program_sessions.ids)}
    region = Region(tenant=tenant, name=name or clean_text(data.name, 500) or filename, filename=filename,
                    size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest(),
                    counts=dumps(data.counts()), ids=dumps(ids), content=content, created_at=utcnow())
    session.add(region)
    session.commit()
    return region


@router.post("", status_code=201, response_model=RegionOut,
             summary="Upload a region bundle (.zip of CSV files or .xlsx)",
             responses={**ERRORS, **MALFORMED,
                        413: {"model": ErrorResponse, "description": "upload or unpacked archive too large"},
                        422: {"model": ErrorResponse, "description": "the bundle has problems: all of them, listed"}})
def upload_region(
    file: Annotated[UploadFile, File(description="the bundle: a .zip of the CSV folder (docs/bundle.md) or an .xlsx "
                                                 "workbook with one sheet per file")],
    request: Request, response: Response, session: SessionDep, settings: SettingsDep, access: PlannerAccess,
) -> RegionOut:
    """Validates the bundle (every problem is reported at once, as 422) and stores it, as the key's
    tenant's."""
    return region_out(accept_upload(file, request, response, session, settings, access, "region", store_region))


@router.get("", response_model=list[RegionOut], dependencies=[Viewer], responses=ERRORS,
            summary="List regions, newest first")
def list_regions(session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> list[RegionOut]:
    return [region_out(region, n) for region, n in with_plan_counts(session, Region, Plan.region_id, limit, offset)]


@router.get("/{region_id}", response_model=RegionOut, dependencies=[Viewer], responses={**ERRORS, **NOT_FOUND},
            summary="A region's name and counts")
def read_region(region_id: str, session: SessionDep) -> RegionOut:
    region = get_region(session, region_id)
    plans = session.scalar(select(func.count()).select_from(Plan).where(Plan.region_id == region.id))
    return region_out(region, plans)


@router.delete("/{region_id}", status_code=204, responses={**ERRORS, **NOT_FOUND},
               summary="Delete a region: its bundle, plans, files and registry records (running solves are stopped)")
def delete_region(region_id: str, request: Request, session: SessionDep, access: PlannerAccess) -> Response:
    region = get_region(session, region_id)
    erased = erase_region(request.app, session, region)
    access.audit("region.delete", "region", region.id, tenant=region.tenant, detail=erased)
    return Response(status_code=204)
