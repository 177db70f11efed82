"""Enrolment orders of a plan: one per program assignment, with an id derived from the plan, the
teacher and the registry session (UUIDv5), so the same assignment is always the same order.

The bundle the plan was made on maps the plan's ids to the registry's: `teachers.csv` gives the
certificate (`certificate_id`, written by the import) and the voucher balance (`voucher_rub`),
`program_sessions.csv` the registry session (`registry_session_id`), `programs.csv` the
registry program (`registry_id`).
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..problems import BundleError, InputError, Problem, ProblemReport
from ..sources import read_source, read_upload

# Fixed forever: changing it would give every order of every plan a new id. Published in
# docs/registry.md ("Order ids") so that a registry or an auditor can recompute the ids.
ORDER_NAMESPACE = uuid.UUID("2b9f1c64-5a0e-5d3b-8f4e-6d1a7c9e0b52")
ORDER_NAME_SEPARATOR = "\x1f"  # U+001F (unit separator): never part of an id
ASSIGNMENT_COLUMNS = ["teacher_id", "kind", "resource_id", "start", "end", "hours", "cost_rub", "funded_by"]


def order_id(plan_key: str, teacher_id: str, registry_session_id: str) -> str:
    """UUIDv5 (namespace ORDER_NAMESPACE) of the name `plan key U+001F teacher id U+001F registry
    session id`, UTF-8 (Python's uuid.uuid5)."""
    return str(uuid.uuid5(ORDER_NAMESPACE, ORDER_NAME_SEPARATOR.join((plan_key, teacher_id, registry_session_id))))


@dataclass
class PlanOrders:
    plan_key: str
    plan_ref: str
    orders: list[dict]  # ledger rows (registry_orders columns)
    blocked: dict[str, tuple[str, str]] = field(default_factory=dict)  # order id -> (code, reason), never sent
    balances: dict[str, int] = field(default_factory=dict)  # certificate -> voucher balance the plan was made on


def plan_key_of(assignments_csv: bytes) -> str:
    """A plan folder's key: `plan-` + the SHA-256 of its assignments.csv (the file's bytes) in
    lower-case hex, 69 characters; the same plan is the same key."""
    return "plan-" + hashlib.sha256(assignments_csv).hexdigest()


def legacy_plan_key(assignments_csv: bytes) -> str:
    """The key marshrut gave plan folders before the documented one: `plan-` + the first 40 hex
    digits of the SHA-256. A plan already in a ledger under it keeps it (its orders carry it)."""
    return "plan-" + hashlib.sha256(assignments_csv).hexdigest()[:40]


def folder_plan_key(assignments_csv: bytes, ledger=None) -> str:
    """The plan key to use: the documented one, unless the ledger already holds the plan's
    orders under the legacy key and none under the documented one — their ids and the
    registry's `external_ref` were derived from it, so the plan keeps it (docs/registry.md)."""
    key = plan_key_of(assignments_csv)
    if ledger is not None and not ledger.has_orders(key):
        legacy = legacy_plan_key(assignments_csv)
        if ledger.has_orders(legacy):
            return legacy
    return key


def read_plan_folder(folder: str | Path, ledger=None) -> tuple[str, pd.DataFrame]:
    """(plan key, assignments) of a plan folder written by `marshrut plan`; with the ledger, a plan
    it holds under the legacy key keeps that key."""
    folder = Path(folder)
    path = folder / "assignments.csv"
    if not path.is_file():
        raise InputError([Problem(str(path), "нет файла плана assignments.csv (нужна папка плана)", "not_found")],
                         title="Папка плана не найдена")
    content = path.read_bytes()
    return folder_plan_key(content, ledger), parse_assignments(content, str(path))


def parse_assignments(content: bytes, name: str = "assignments.csv") -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError([Problem(name, "нет обязательного столбца", "missing_column", column=c) for c in missing],
                         title="Ошибки в файле плана")
    return frame


def bundle_tables(bundle: str | Path | None = None, *, content: bytes | None = None,
                  filename: str = "bundle.zip") -> dict[str, pd.DataFrame]:
    """The bundle's raw tables (strings): from a folder, .zip or .xlsx path, or uploaded bytes."""
    report = ProblemReport()
    raw = read_upload(content, filename, report) if content is not None else read_source(bundle, report)
    for file in ("teachers.csv", "program_sessions.csv", "programs.csv"):
        if file not in raw.tables and not report:
            report.add(file, "файл отсутствует", code="missing_file")
    if report:
        raise BundleError.from_report(report)
    return raw.tables


def build_orders(plan_key: str, plan_ref: str, assignments: pd.DataFrame,
                 tables: dict[str, pd.DataFrame]) -> PlanOrders:
    teachers = tables["teachers.csv"]
    certificates = dict(zip(teachers["teacher_id"], teachers["certificate_id"])) \
        if "certificate_id" in teachers.columns else {}
    vouchers = dict(zip(teachers["teacher_id"], teachers["voucher_rub"]))
    known_teachers = set(teachers["teacher_id"])
    sessions = tables["program_sessions.csv"]
    registry_sessions = dict(zip(sessions["session_id"], sessions["registry_session_id"])) \
        if "registry_session_id" in sessions.columns else {}
    session_program = dict(zip(sessions["session_id"], sessions["program_id"]))
    programs = tables["programs.csv"]
    registry_programs = dict(zip(programs["program_id"], programs["registry_id"]))

    result = PlanOrders(plan_key, plan_ref, [])
    program_rows = assignments[assignments["kind"].eq("program")]
    seen: set[str] = set()
    for row in program_rows.itertuples(index=False):
        teacher, session = row.teacher_id, row.resource_id
        registry_session = registry_sessions.get(session, "")
        program = registry_programs.get(session_program.get(session, ""), "")
        certificate = certificates.get(teacher) or None
        problem = None
        if teacher not in known_teachers:
            problem = ("unknown_teacher", "педагога нет в наборе данных, по которому составлен план")
        elif session not in session_program:
            problem = ("unknown_session", "сессии нет в наборе данных, по которому составлен план")
        elif not program:
            problem = ("not_in_registry", "программа не из реестра (нет registry_id): оплата сертификатом невозможна")
        elif not registry_session:
            problem = ("not_in_registry", "сессия не импортирована из реестра (нет registry_session_id)")
        elif certificate is None:
            problem = ("no_certificate", "у педагога нет сертификата (certificate_id) в наборе данных")
        key = registry_session or f"local:{session}"
        oid = order_id(plan_key, teacher, key)
        if oid in seen:  # the same teacher twice in one session: one order
            continue
        seen.add(oid)
        try:
            amount = int(float(row.cost_rub))
        except ValueError:
            amount = 0
            problem = problem or ("bad_amount", f"сумма не число: {row.cost_rub!r}")
        result.orders.append({
            "order_id": oid, "teacher_id": teacher, "session_id": session, "registry_session_id": key,
            "program_id": program, "certificate_id": certificate, "amount_rub": amount})
        if problem:
            result.blocked[oid] = problem
        if certificate is not None:
            try:
                result.balances[certificate] = int(float(vouchers.get(teacher, "0") or 0))
            except ValueError:
                result.balances[certificate] = 0
    return result
