"""The personalised-funding registry: import into a region, push a plan's enrolment orders, reconcile.

- `POST /v1/regions/{region_id}/registry/import`: a registry export (JSON or a .zip of CSV files) and
  a competency mapping merged into the region's bundle; a changed bundle is stored as a new region
  (the old one and its plans stay as they were), an unchanged one answers with the same region.
- `POST /v1/plans/{plan_id}/registry/push`: sends the done plan's orders in the background to the
  registry configured on the server (`MARSHRUT_REGISTRY_URL`, `MARSHRUT_REGISTRY_API_KEY`); calling
  it again resumes a stopped push. `GET /v1/plans/{plan_id}/registry` follows it and reconciles
  (`?check=true` also compares with the registry's own orders); `.../registry/orders` lists the ledger.

The registry's URL is the server's setting, never the request's: a client cannot make the server
call an address of its choosing.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select

from marshrut.engine import BundleError, InputError
from marshrut.engine.registry.client import PushOptions, PushResult, StatusReport, plan_status, push_orders, reconcile
from marshrut.engine.registry.importer import STATE_FILE, ImportReport, import_export, read_export, read_mapping
from marshrut.engine.registry.ledger import Ledger, owner_alive
from marshrut.engine.registry.orders import build_orders, bundle_tables, parse_assignments
from marshrut.engine.problems import ProblemReport
from marshrut.engine.sources import REGION_FILE, read_upload

from ..db import PlanFile, Region, utcnow
from ..deps import PlannerAccess, SessionDep, SettingsDep, Viewer
from ..responses import attachment
from ..schemas import ErrorResponse, RegionOut
from .plans import audit_export, get_plan
from .regions import ERRORS, get_region, problems_exception, region_out, store_region

log = logging.getLogger("marshrut.api.registry")
router = APIRouter(tags=["registry"])

NOT_FOUND = {404: {"model": ErrorResponse, "description": "no such region or plan"}}


class RegistrySettings(BaseSettings):
    """The registry this server pushes to (environment, prefix MARSHRUT_REGISTRY_)."""

    model_config = SettingsConfigDict(env_prefix="MARSHRUT_REGISTRY_", extra="ignore")

    url: str = Field("", description="base URL of the registry API; empty: pushing is disabled")
    api_key: str = Field("", description="sent as Authorization: Bearer")
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    backoff_s: float = Field(0.5, ge=0)
    concurrency: int = Field(4, ge=1, le=64)
    lease_s: float = Field(60.0, gt=0)
    pending_wait_s: float = Field(30.0, ge=0, description="how long a push keeps asking about pending orders")
    poll_s: float = Field(1.0, gt=0, description="first pause between asks about pending orders, doubling")
    retry_after_cap_s: float = Field(120.0, ge=0, description="a longer Retry-After stops the push")


class RegistryImportOut(BaseModel):
    source_region_id: str
    region_id: str = Field(description="the region with the import merged in: new if anything changed, "
                                       "else the source region")
    changed: bool
    region: RegionOut
    report: ImportReport


class PushStarted(BaseModel):
    plan_id: str
    state: Literal["running"] = "running"
    registry: str


class OrdersOut(BaseModel):
    plan_id: str
    total: int
    orders: list[dict]


def _ledger(request: Request) -> Ledger:
    ledger = getattr(request.app.state, "registry_ledger", None)
    if ledger is None:
        ledger = Ledger(request.app.state.engine)  # creates the ledger tables on first use
        request.app.state.registry_ledger = ledger
    return ledger


# ------------------------------------------------------------------------------------------------
# import
# ------------------------------------------------------------------------------------------------

def _bundle_folder(region: Region, folder: Path) -> None:
    """The stored bundle (a .zip or .xlsx) as a folder of CSV files, with the last import's record."""
    report = ProblemReport()
    raw = read_upload(bytes(region.content), region.filename, report)
    if report:  # it was valid when uploaded
        raise problems_exception(BundleError.from_report(report))
    folder.mkdir(parents=True)
    (folder / REGION_FILE).write_text(json.dumps(raw.region, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for name, table in raw.tables.items():
        table.to_csv(folder / name, index=False, lineterminator="\n")
    content = bytes(region.content)
    if content[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                for member in archive.infolist():
                    if member.filename.rsplit("/", 1)[-1] == STATE_FILE and member.file_size < 100_000:
                        (folder / STATE_FILE).write_bytes(archive.read(member))
        except zipfile.BadZipFile:
            pass


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            if file.is_file():
                archive.write(file, file.name)
    return buffer.getvalue()


@router.post("/v1/regions/{region_id}/registry/import", response_model=RegistryImportOut, status_code=201,
             summary="Merge a registry export into the region (a new region if it changes)",
             responses={**ERRORS, **NOT_FOUND, 200: {"model": RegistryImportOut, "description": "nothing changed"},
                        422: {"model": ErrorResponse, "description": "the export or a mapping has problems: "
                                                                     "all of them, listed"}})
def import_registry(
    region_id: str, request: Request, response: Response, session: SessionDep, settings: SettingsDep,
    access: PlannerAccess,
    export: Annotated[UploadFile, File(description="registry export: JSON, or a .zip of programs.csv, "
                                                   "sessions.csv, vouchers.csv (docs/registry.md)")],
    mapping: Annotated[UploadFile | None, File(description="competency mapping: CSV registry_code,"
                                                           "competency_id[,weight] or JSON")] = None,
    municipalities: Annotated[UploadFile | None, File(description="CSV registry_code,municipality_id")] = None,
    keep_withdrawn: Annotated[bool, Form()] = False,
    allow_older: Annotated[bool, Form()] = False,
) -> RegistryImportOut:
    """Re-importing the same export answers 200 with the same region; a newer export answers 201 with
    a new region and the difference (programs, sessions, competencies and vouchers added, removed,
    changed) in `report.diff`. Unmapped competency codes are listed in `report.unmapped_codes`."""
    region = get_region(session, region_id)
    work = Path(tempfile.mkdtemp(prefix="marshrut-registry-import-"))
    try:
        folder = work / "bundle"
        _bundle_folder(region, folder)
        source = work / (Path(export.filename or "export").name or "export")
        source.write_bytes(export.file.read(settings.max_body_bytes + 1))
        paths = {}
        for name, upload in (("mapping", mapping), ("municipalities", municipalities)):
            if upload is not None:
                suffix = ".json" if (upload.filename or "").lower().endswith(".json") else ".csv"
                paths[name] = work / f"{name}{suffix}"
                paths[name].write_bytes(upload.file.read(settings.max_body_bytes + 1))
        try:
            loaded = read_export(source)
            loaded.source = export.filename or "upload"
            table = read_mapping(paths.get("mapping"), folder, paths.get("municipalities"))
            report = import_export(folder, loaded, table, keep_withdrawn=keep_withdrawn, allow_older=allow_older)
        except BundleError as error:
            raise problems_exception(error) from None
        except InputError as error:
            body = error.as_dict()
            raise HTTPException(422, {"detail": body.pop("title"), **body}) from None
        report.bundle = f"region:{region.id}"
        if not report.changed:
            response.status_code = 200
            result = RegistryImportOut(source_region_id=region.id, region_id=region.id, changed=False,
                                       region=region_out(region), report=report)
        else:
            content = _zip_folder(folder)
            filename = f"{Path(region.filename).stem}-registry.zip"
            new = store_region(session, content, filename, name=region.name, tenant=region.tenant)
            response.headers["Location"] = str(request.url_for("read_region", region_id=new.id))
            result = RegistryImportOut(source_region_id=region.id, region_id=new.id, changed=True,
                                       region=region_out(new), report=report)
        _ledger(request).record_import(
            source_region_id=region.id, region_id=result.region_id, source=loaded.source,
            registry=report.registry, exported_at=report.exported_at, export_sha256=report.export_sha256,
            changed=report.changed, report=report.model_dump(mode="json"))
        access.audit("registry.import", "region", result.region_id, tenant=region.tenant,
                     detail={"source_region_id": region.id, "changed": report.changed})
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# push, status, orders
# ------------------------------------------------------------------------------------------------

_running: dict[str, threading.Thread] = {}
_running_lock = threading.Lock()


def _push_in_background(ledger: Ledger, registry: RegistrySettings, plan_orders) -> None:
    try:
        result: PushResult = push_orders(ledger, registry.url, plan_orders, PushOptions(
            api_key=registry.api_key or None, timeout_s=registry.timeout_s, max_attempts=registry.max_attempts,
            backoff_s=registry.backoff_s, concurrency=registry.concurrency, lease_s=registry.lease_s,
            pending_wait_s=registry.pending_wait_s, poll_s=registry.poll_s,
            retry_after_cap_s=registry.retry_after_cap_s))
        log.info("registry push of plan %s: %s", plan_orders.plan_key, result.outcome)
    except Exception as error:  # the ledger records the failure; the next call resumes
        log.error("registry push of plan %s failed: %s", plan_orders.plan_key, type(error).__name__)
    finally:
        with _running_lock:
            _running.pop(plan_orders.plan_key, None)


@router.post("/v1/plans/{plan_id}/registry/push", response_model=PushStarted, status_code=202,
             summary="Send the plan's enrolment orders to the registry (in the background)",
             responses={**ERRORS, **NOT_FOUND,
                        409: {"model": ErrorResponse, "description": "the plan is not done, or is being pushed"},
                        503: {"model": ErrorResponse, "description": "no registry configured on the server"}})
def push_plan(plan_id: str, request: Request, session: SessionDep, access: PlannerAccess) -> PushStarted:
    """One order per program assignment, id derived from plan, teacher and session. Follow it with
    `GET /v1/plans/{plan_id}/registry`; if it stopped (a 4xx, the registry unavailable), call this
    again once the cause is fixed: it resumes, never sending an order twice under another id. A
    push whose orders the registry has not all decided ends with `push.state` `pending`; calling
    this again later asks the registry about them (`GET /v1/orders/{id}`) without re-sending."""
    plan = get_plan(session, plan_id)  # first: another tenant's plan is a 404 whatever the configuration
    registry = RegistrySettings()
    if not registry.url:
        raise HTTPException(503, "Реестр не настроен на сервере (set MARSHRUT_REGISTRY_URL)")
    if plan.status != "done":
        raise HTTPException(409, f"План ещё не готов (plan is {plan.status})")
    assignments = session.scalar(select(PlanFile.content).where(PlanFile.plan_id == plan.id,
                                                                PlanFile.name == "assignments.csv"))
    region = session.get(Region, plan.region_id)
    if assignments is None or region is None:
        raise HTTPException(404, "План не найден (plan not found)")
    try:
        plan_orders = build_orders(plan.id, f"api:{plan.id}", parse_assignments(bytes(assignments)),
                                   bundle_tables(content=bytes(region.content), filename=region.filename))
    except BundleError as error:
        raise problems_exception(error) from None
    ledger = _ledger(request)
    with _running_lock:
        if plan.id in _running:
            raise HTTPException(409, "План уже отправляется (a push of this plan is running)")
        state = ledger.push_state(plan.id)
        fresh = state is not None and state["heartbeat_at"] is not None and \
            (utcnow() - state["heartbeat_at"]).total_seconds() < registry.lease_s
        if fresh and state["state"] == "running" and owner_alive(state["owner"]):
            raise HTTPException(409, "План уже отправляется другим процессом (a push of this plan is running)")
        thread = threading.Thread(target=_push_in_background, args=(ledger, registry, plan_orders),
                                  name=f"registry-push-{plan.id}", daemon=True)
        _running[plan.id] = thread
        thread.start()
    access.audit("registry.push", "plan", plan.id, tenant=plan.tenant)
    return PushStarted(plan_id=plan.id, registry=registry.url)


@router.get("/v1/plans/{plan_id}/registry", response_model=StatusReport, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, 502: {"model": ErrorResponse, "description": "the registry did not "
                                                                                          "answer the check"}},
            summary="Reconcile: planned vs accepted vs rejected (with reasons), and the push's state")
def registry_status(plan_id: str, request: Request, session: SessionDep,
                    check: Annotated[bool, Query(description="also compare with the registry's own orders")] = False,
                    limit: Annotated[int, Query(ge=0, le=10_000)] = 200) -> StatusReport:
    plan = get_plan(session, plan_id)
    ledger = _ledger(request)
    differences = None
    if check:
        registry = RegistrySettings()
        if not registry.url:
            raise HTTPException(503, "Реестр не настроен на сервере (set MARSHRUT_REGISTRY_URL)")
        try:
            differences = reconcile(ledger, plan.id, registry.url, api_key=registry.api_key or None,
                                    timeout_s=registry.timeout_s)
        except Exception as error:  # httpx errors, a registry answering nonsense
            raise HTTPException(502, f"Реестр не ответил на сверку ({type(error).__name__})") from None
    report = plan_status(ledger, plan.id, limit=limit)
    report.reconciliation = differences
    if report.push is not None and plan.id in _running:
        report.push["state"] = "running"
    return report


LEDGER_COLUMNS = ["order_id", "teacher_id", "session_id", "registry_session_id", "program_id", "certificate_id",
                  "amount_rub", "status", "reason_code", "reason", "balance_after_rub", "attempts", "http_status",
                  "created_at", "first_sent_at", "answered_at"]


@router.get("/v1/plans/{plan_id}/registry/orders", response_model=OrdersOut, dependencies=[Viewer],
            responses={**ERRORS, **NOT_FOUND, 200: {"description": "JSON, or with ?format=csv a CSV file",
                                                    "content": {"text/csv": {"schema": {"type": "string"}}}}},
            summary="The ledger's orders of the plan (state, reason, attempts)")
def registry_orders(plan_id: str, request: Request, session: SessionDep,
                    status: Annotated[str | None, Query(max_length=16)] = None,
                    format: Literal["json", "csv"] = "json") -> OrdersOut | Response:
    plan = get_plan(session, plan_id)
    rows = _ledger(request).plan_orders(plan.id)
    audit_export(session, plan, "registry_orders", format=format)
    if status is not None:
        rows = [r for r in rows if r["status"] == status]
    rows = [{k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v) for k, v in r.items() if k in LEDGER_COLUMNS}
            for r in rows]
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LEDGER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return attachment(buffer.getvalue().encode("utf-8"), f"registry-orders-{plan.id}.csv")
    return OrdersOut(plan_id=plan.id, total=len(rows), orders=rows)

