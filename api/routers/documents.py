"""Route documents over HTTP (docs/plan-files.md), and the Excel round trip.

    GET  /v1/plans/{id}/documents/teachers/{teacher_id}[?format=pdf]   a teacher's route document
    GET  /v1/plans/{id}/documents/schools/{school_id}                  a school's package (.zip)
    GET  /v1/plans/{id}/documents/municipalities/{municipality_id}     every school of a municipality (.zip)
    POST /v1/plans/{id}/documents                                      every document of the region: a job
    GET  /v1/plans/{job_id}/documents.zip                              the finished job's .zip
    POST /v1/plans/{id}/decisions                                      plan.xlsx back with «Решение» marks

Documents are rendered from the stored plan and its region's bundle with the default templates
(engine/documents.py), on request; the last few plans' compiled templates and views are kept. A whole
region's documents (thousands of them, PDFs at seconds each) are a job in the plans' queue instead
(kind `documents`, api/worker.py), like re-plans and sweeps.
"""

from __future__ import annotations

import io
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from ..db import Plan, dumps, loads, utcnow
from ..deps import PlannerAccess, SessionDep, SettingsDep, Viewer
from ..erase import register_eraser
from ..responses import attachment
from ..schemas import ErrorResponse
from .explain import JobCreated, _finished_job, _params, load_region, queue_replan
from .plans import NOT_FOUND, NOT_READY, audit_export, get_plan, plan_file, queue_job
from .regions import ERRORS

router = APIRouter(prefix="/v1/plans", tags=["documents"])

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF = "application/pdf"
ZIP = "application/zip"
BINARY = {"schema": {"type": "string", "format": "binary"}}

_sets: OrderedDict[str, object] = OrderedDict()
_sets_lock = threading.Lock()


@register_eraser
def _forget_plans(_region_id: str, plan_ids: list[str]) -> dict:
    """A deleted region's plans leave nothing of their documents in memory."""
    with _sets_lock:
        removed = sum(_sets.pop(plan_id, None) is not None for plan_id in plan_ids)
    return {"cached_documents": removed} if removed else {}


def document_set(session, plan: Plan):
    """The plan's DocumentSet (its view of the region, the compiled templates); the last few are kept."""
    from marshrut.engine.documents import DocumentSet
    from marshrut.engine.plan_view import plan_view

    assignments = plan_file(session, plan, "assignments.csv")  # 409 unless done
    with _sets_lock:
        if plan.id in _sets:
            _sets.move_to_end(plan.id)
            return _sets[plan.id]
    frame = pd.read_csv(io.BytesIO(assignments), dtype=str, keep_default_na=False)
    documents = DocumentSet(plan_view(load_region(session, plan), _params(plan), frame))
    with _sets_lock:
        _sets[plan.id] = documents
        while len(_sets) > 3:
            _sets.popitem(last=False)
    return documents


def _ascii(text: str) -> str:
    """An id as part of a download's file name (headers are Latin-1)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80] or "_"


@router.get("/{plan_id}/documents/teachers/{teacher_id}", dependencies=[Viewer], response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                       503: {"model": ErrorResponse, "description": "PDF asked, but LibreOffice is not installed"},
                       200: {"description": "the route document (индивидуальный образовательный маршрут)",
                             "content": {DOCX: BINARY, PDF: BINARY}}},
            summary="A teacher's individual route document (.docx, or .pdf with ?format=pdf)")
def teacher_document(plan_id: str, teacher_id: str, session: SessionDep,
                     format: Literal["docx", "pdf"] = "docx") -> Response:
    plan = get_plan(session, plan_id)
    documents = document_set(session, plan)
    t = documents.view.region.teachers.index.get(teacher_id)
    if t is None:
        raise HTTPException(404, "Учитель не найден в регионе плана (teacher not found)")
    if t not in documents.teachers():
        raise HTTPException(404, "У педагога нет маршрута в этом плане (no route for this teacher)")
    content = documents.teacher_document(t)
    audit_export(session, plan, "document", teacher_id=teacher_id, format=format)
    name = f"IOM_{_ascii(teacher_id)}_{plan.id[:8]}"
    if format == "pdf":
        return attachment(_pdf(content, name), f"{name}.pdf", PDF)
    return attachment(content, f"{name}.docx", DOCX)


def _require_soffice() -> None:
    from marshrut.engine.office import find_soffice

    if find_soffice() is None:
        raise HTTPException(503, "PDF недоступен: на сервере не установлен LibreOffice (LibreOffice not installed)")


def _pdf(docx: bytes, name: str) -> bytes:
    from marshrut.engine.office import convert_to_pdf

    _require_soffice()
    with tempfile.TemporaryDirectory(prefix="marshrut-pdf-") as tmp:
        source = Path(tmp) / f"{name}.docx"
        source.write_bytes(docx)
        (pdf,) = convert_to_pdf([source], timeout_s=120)
        return pdf.read_bytes()


@router.get("/{plan_id}/documents/schools/{school_id}", dependencies=[Viewer], response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                       200: {"description": "a .zip: the school's folder with its summary and every route document "
                                            "of its teachers", "content": {ZIP: BINARY}}},
            summary="A school's package of route documents (.zip)")
def school_package(plan_id: str, school_id: str, session: SessionDep) -> Response:
    plan = get_plan(session, plan_id)
    documents = document_set(session, plan)
    school = documents.view.region.schools.index.get(school_id)
    if school is None or school not in documents.schools():
        raise HTTPException(404, "Нет школы с маршрутами в этом плане (no school with routes)")
    audit_export(session, plan, "documents", school_id=school_id)
    return attachment(documents.school_package(school), f"documents-{_ascii(school_id)}-{plan.id[:8]}.zip", ZIP)


@router.get("/{plan_id}/documents/municipalities/{municipality_id}", dependencies=[Viewer], response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                       200: {"description": "a .zip with a folder per school of the municipality",
                             "content": {ZIP: BINARY}}},
            summary="The route documents of every school of a municipality (.zip)")
def municipality_package(plan_id: str, municipality_id: str, session: SessionDep) -> Response:
    plan = get_plan(session, plan_id)
    documents = document_set(session, plan)
    region = documents.view.region
    m = region.municipalities.index.get(municipality_id)
    schools = [s for s in documents.schools() if m is not None and region.schools.municipality[s] == m]
    if not schools:
        raise HTTPException(404, "Нет маршрутов в этом муниципалитете (no routes in this municipality)")
    audit_export(session, plan, "documents", municipality_id=municipality_id)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for school in schools:
            with zipfile.ZipFile(io.BytesIO(documents.school_package(school))) as package:
                for info in package.infolist():
                    archive.writestr(info, package.read(info))
    return attachment(out.getvalue(), f"documents-{_ascii(municipality_id)}-{plan.id[:8]}.zip", ZIP)


class DocumentsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pdf": False}]})
    pdf: bool = Field(False, description="also a .pdf beside each .docx (LibreOffice on the server; seconds each)")


@router.post("/{plan_id}/documents", status_code=202, response_model=JobCreated,
             responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                        429: {"model": ErrorResponse, "description": "the tenant has its limit of jobs queued"},
                        503: {"model": ErrorResponse, "description": "PDF asked, but LibreOffice is not installed"}},
             summary="Every route document of the plan's region (.zip, a folder per school): queued")
def queue_documents(plan_id: str, request: Request, response: Response, session: SessionDep, access: PlannerAccess,
                    body: DocumentsRequest | None = None) -> JobCreated:
    """Each teacher's route document and each school's summary, in a folder per school as
    `marshrut documents` writes them, written as one job in the queue (progress `documents i/n`, then
    `pdf i/n`; cancel with `DELETE /v1/plans/{plan_id}` of the job; survives a restart). Follow
    `GET /v1/plans/{plan_id}` of the job, then download `GET /v1/plans/{plan_id}/documents.zip`."""
    body = body or DocumentsRequest()
    plan = get_plan(session, plan_id)
    if plan.kind not in ("plan", "replan"):
        raise HTTPException(404, f"У задания вида {plan.kind} нет маршрутов (a {plan.kind} job has no routes)")
    plan_file(session, plan, "assignments.csv")  # 409 unless done
    if body.pdf:
        _require_soffice()
    job = {"source_plan_id": plan.id, "pdf": body.pdf}
    new = Plan(region_id=plan.region_id, tenant=plan.tenant, kind="documents", job=dumps(job), params=plan.params,
               status="queued", attempt=0, created_at=utcnow())
    queue_job(request, session, access, new, "plan.documents", job)
    response.headers["Location"] = str(request.url_for("read_plan", plan_id=new.id))
    return JobCreated(plan_id=new.id, kind="documents", status="queued", region_id=plan.region_id,
                      previous_plan_id=plan.id)


@router.get("/{plan_id}/documents.zip", dependencies=[Viewer], response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                       200: {"description": "a .zip with a folder per school: its summary and every route document "
                                            "of its teachers (.docx, and .pdf if the job asked)",
                             "content": {ZIP: BINARY}}},
            summary="A finished documents job: every route document of the region (.zip)")
def read_documents_zip(plan_id: str, session: SessionDep) -> Response:
    plan = _finished_job(session, plan_id, "documents")
    content = plan_file(session, plan, "documents.zip")
    job = loads(plan.job)
    audit_export(session, plan, "documents", source_plan_id=job["source_plan_id"], pdf=job["pdf"])
    return attachment(content, f"documents-{job['source_plan_id'][:8]}-{plan.id[:8]}.zip", ZIP)


@router.post("/{plan_id}/decisions", status_code=202, response_model=JobCreated,
             responses={**ERRORS, **NOT_FOUND, **NOT_READY,
                        413: {"model": ErrorResponse, "description": "upload too large"},
                        422: {"model": ErrorResponse, "description": "bad rows of «Маршруты», each with its row "
                                                                     "and column; nothing was re-planned"},
                        429: {"model": ErrorResponse, "description": "the tenant has its limit of jobs queued"}},
             summary="Re-plan with the planner's decisions: plan.xlsx back with «закрепить» / «исключить»")
def decisions(plan_id: str, request: Request, response: Response, session: SessionDep, settings: SettingsDep,
              access: PlannerAccess,
              file: Annotated[UploadFile, File(description="the plan's plan.xlsx, with «закрепить» or «исключить» "
                                                           "in the column «Решение» of the sheet «Маршруты»")],
              time_limit_s: float | None = None) -> JobCreated:
    """Marked rows become pinned and forbidden assignments (added to the plan's own); the re-plan,
    keeping what it can of the plan, is queued like any re-plan: follow `GET /v1/plans/{plan_id}`."""
    from marshrut.engine.changes import Changes
    from marshrut.engine.decisions import read_decisions
    from marshrut.engine.replan import DEFAULT_KEEP_BONUS

    plan = get_plan(session, plan_id)
    plan_file(session, plan, "assignments.csv")  # 409 unless done
    content = file.file.read(settings.max_body_bytes + 1)
    if len(content) > settings.max_body_bytes:
        raise HTTPException(413, f"Файл больше {settings.max_body_bytes} байт (upload too large)")
    params = _params(plan, time_limit_s, settings)
    region = load_region(session, plan)
    marked = read_decisions(content, region, Path(file.filename or "plan.xlsx").name[:200])  # 422 with the rows
    return queue_replan(request, response, session, access, plan, Changes().model_dump(mode="json"),
                        marked.apply(params), DEFAULT_KEEP_BONUS)
