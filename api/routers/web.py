"""The planners' web page at `/` and the read endpoints it needs beyond the plan files.

- `GET /` and `GET /web/{file}`: the page and its assets (api/web/, no CDN: everything is served here).
- `GET /v1/template.xlsx`: an empty bundle workbook (docs/bundle.md), one sheet per file with an example row.
- `GET /v1/regions/{region_id}/map`: municipalities with coordinates, roads, competencies' names.
- `GET /v1/plans/{plan_id}/municipalities`: need, covered need, spending per municipality and the
  trips of the plan (teacher's municipality -> activity's municipality) for the map.
- `GET /v1/plans/{plan_id}/teachers/{teacher_id}`: one teacher's school and need per competency
  before and after the plan (what the route closes).

The region is parsed again from the stored bundle (cached for a few regions): the plan files keep
only what docs/plan-files.md asks for.
"""

from __future__ import annotations

import io
import mimetypes
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import undefer

from marshrut.engine import RegionData, load_upload, params_from_dict
from marshrut.engine.needs import need_matrix

from ..access import access_of
from ..db import Region, loads
from ..deps import SessionDep, Viewer
from ..erase import register_eraser
from ..responses import XLSX, attachment
from .plans import NOT_FOUND as PLAN_NOT_FOUND
from .plans import NOT_READY, audit_export, csv_rows, get_plan, plan_file
from .regions import ERRORS, get_region, valid_id

router = APIRouter()

WEB = Path(__file__).resolve().parent.parent / "web"
NO_STORE = {"Cache-Control": "no-cache"}

# ------------------------------------------------------------------------------------------------
# the page
# ------------------------------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(WEB / "index.html", media_type="text/html; charset=utf-8", headers=NO_STORE)


@router.get("/web/{path:path}", include_in_schema=False)
def asset(path: str) -> FileResponse:
    """A file under api/web/ (never outside it)."""
    root = WEB.resolve()
    target = (root / path).resolve()
    if not path or not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, "Нет такого файла (not found)")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
        media_type += "; charset=utf-8"
    return FileResponse(target, media_type=media_type, headers=NO_STORE)


# ------------------------------------------------------------------------------------------------
# the template workbook
# ------------------------------------------------------------------------------------------------

# docs/bundle.md, one example row per file; together they form a small valid region.
TEMPLATE: dict[str, tuple[tuple[str, ...], tuple]] = {
    "competencies": (("competency_id", "name", "group"),
                     ("fl_reading", "Читательская грамотность", "functional_literacy")),
    "municipalities": (("municipality_id", "name", "lat", "lon"), ("MUN01", "г. Томск", 56.48458, 84.948158)),
    "roads": (("from_municipality", "to_municipality", "minutes"), ("MUN01", "MUN02", 17)),
    "schools": (("school_id", "name", "municipality_id", "low_results"), ("S0001", "МАОУ СОШ № 1", "MUN01", 0)),
    "teachers": (("teacher_id", "school_id", "role", "voucher_rub", "max_hours", "last_training_date"),
                 ("T000001", "S0001", "teacher", 20000, 144, "2023-04-15")),
    "diagnostics": (("teacher_id", "competency_id", "score"), ("T000001", "fl_reading", 55)),
    "mentors": (("mentor_id", "teacher_id", "school_id", "capacity", "remote", "stipend_rub", "hours_per_mentee"),
                ("MEN001", "", "S0002", 3, 0, 10000, 18)),
    "mentor_competencies": (("mentor_id", "competency_id", "weight"), ("MEN001", "fl_reading", 0.6)),
    "sites": (("site_id", "school_id", "name"), ("SITE01", "S0002", "Стажировочная площадка «Читаем вместе»")),
    "site_competencies": (("site_id", "competency_id", "weight"), ("SITE01", "fl_reading", 0.8)),
    "site_sessions": (("session_id", "site_id", "start", "end", "seats", "hours", "cost_rub"),
                      ("SS0001", "SITE01", "2026-10-20", "2026-10-21", 20, 16, 4400)),
    "programs": (("program_id", "registry_id", "provider", "name", "format", "hours", "price_rub"),
                 ("P001", "70-ТОИПКРО-00001", "ОГБУ ДПО «ТОИПКРО»", "Формирование читательской грамотности",
                  "online", 36, 12000)),
    "program_competencies": (("program_id", "competency_id", "weight"), ("P001", "fl_reading", 0.7)),
    "program_sessions": (("session_id", "program_id", "start", "end", "seats", "municipality_id"),
                         ("PS0001", "P001", "2026-11-02", "2026-11-20", 30, "")),
    "budgets": (("scope", "scope_id", "amount_rub"), ("region", "", 500000)),
}
TEMPLATE_EXTRA_ROWS = {
    "municipalities": [("MUN02", "г. Северск", 56.603128, 84.880993)],
    "schools": [("S0002", "МАОУ «Гимназия № 5»", "MUN01", 0)],
    "budgets": [("municipality", "MUN01", 300000)],
}
REGION_ROWS = (("name", "Название региона"), ("period_start", "2026-09-01"), ("period_end", "2027-05-31"))


def template_workbook() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    workbook = Workbook()
    header_font, header_fill = Font(bold=True), PatternFill("solid", fgColor="DDE7F3")
    sheet = workbook.active
    sheet.title = "region"
    for row in (("key", "value"), *REGION_ROWS):
        sheet.append(row)
    for name, (columns, example) in TEMPLATE.items():
        sheet = workbook.create_sheet(name)
        sheet.append(columns)
        sheet.append(example)
        for row in TEMPLATE_EXTRA_ROWS.get(name, ()):
            sheet.append(row)
    for sheet in workbook.worksheets:
        for cell in sheet[1]:
            cell.font, cell.fill = header_font, header_fill
        for column in sheet.columns:
            width = max(len(str(cell.value or "")) for cell in column)
            sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width + 2))
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@router.get("/v1/template.xlsx", tags=["regions"], response_class=Response,
            summary="A bundle workbook to fill in: one sheet per file of docs/bundle.md, each with an example row",
            responses={200: {"content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
def template() -> Response:
    return attachment(template_workbook(), "marshrut-template.xlsx", XLSX)


# ------------------------------------------------------------------------------------------------
# region data, parsed from the stored bundle
# ------------------------------------------------------------------------------------------------

_CACHE: OrderedDict[str, RegionData] = OrderedDict()
_CACHE_SIZE = 3
_CACHE_LOCK = threading.Lock()
_LOAD_LOCKS: dict[str, threading.Lock] = {}


@register_eraser
def _forget_region(region_id: str, _plan_ids: list[str]) -> dict:
    with _CACHE_LOCK:
        keys = [key for key in _CACHE if key.partition(":")[0] == region_id]
        for key in keys:
            del _CACHE[key]
    return {"cached_regions": len(keys)} if keys else {}


def region_data(session, region_id: str) -> RegionData:
    region = session.scalar(select(Region).options(undefer(Region.content)).where(Region.id == region_id)) \
        if valid_id(region_id) else None
    if region is None or not access_of(session).sees(region.tenant):
        raise HTTPException(404, "Регион не найден (region not found)")
    key = f"{region.id}:{region.sha256}"
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one parse per region at a time, however many requests ask
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
        data = load_upload(bytes(region.content), region.filename)
        with _CACHE_LOCK:
            _CACHE[key] = data
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
            _LOAD_LOCKS.pop(key, None)
    return data


def _num(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None


@router.get("/v1/regions/{region_id}/map", tags=["regions"], dependencies=[Viewer],
            responses={**ERRORS, 404: {"description": "no region with this id"}},
            summary="Municipalities with coordinates, roads and competencies (for the web page's map and labels)")
def region_map(region_id: str, session: SessionDep) -> dict:
    get_region(session, region_id)
    data = region_data(session, region_id)
    m = data.municipalities
    teacher_mun = data.teacher_municipality
    teachers = np.bincount(teacher_mun, minlength=len(m))
    schools = np.bincount(data.schools.municipality, minlength=len(m))
    budgets = data.budgets.municipality_rub
    comps = data.competencies
    travel = data.travel_minutes
    return {
        "region_id": region_id, "name": data.name,
        "period": [data.period_start.isoformat(), data.period_end.isoformat()],
        "municipalities": [
            {"municipality_id": m.ids[i], "name": m.names[i], "lat": _num(m.lat[i]), "lon": _num(m.lon[i]),
             "teachers": int(teachers[i]), "schools": int(schools[i]),
             "budget_rub": None if budgets[i] < 0 else int(budgets[i])} for i in range(len(m))],
        # roads.csv is not kept as such in RegionData: the shortest paths between neighbours draw it
        "roads": _neighbour_roads(travel, m.ids),
        "region_budget_rub": int(data.budgets.region_rub),
        "competencies": [
            {"competency_id": comps.ids[i], "name": comps.names[i], "group": comps.groups[i],
             "short_name": (comps.short_names[i] if comps.short_names else None) or comps.names[i]}
            for i in range(len(comps))],
    }


def _neighbour_roads(travel: np.ndarray, ids: tuple[str, ...]) -> list[dict]:
    """Pairs whose shortest path goes through no third municipality (the road network's edges, or
    equivalent ones), with their minutes."""
    n = len(ids)
    roads = []
    if n > 400:  # too many to draw anyway
        return roads
    for i in range(n):
        for j in range(i + 1, n):
            t = travel[i, j]
            if not np.isfinite(t) or t <= 0:
                continue
            via = travel[i] + travel[:, j]
            via[[i, j]] = np.inf
            if (via <= t + 1e-9).any():
                continue
            roads.append({"from": ids[i], "to": ids[j], "minutes": _num(t)})
    return roads


# ------------------------------------------------------------------------------------------------
# a plan, seen by municipality and by teacher
# ------------------------------------------------------------------------------------------------

def _cover(data: RegionData, rows: list[dict]) -> tuple[np.ndarray, list[tuple[int, str, int]]]:
    """cover(t, c) summed over the assignments (not capped), and each assignment as
    (teacher, kind, municipality of the activity or -1 when it is not in person)."""
    cover = np.zeros((len(data.teachers), len(data.competencies)))
    where: list[tuple[int, str, int]] = []
    for row in rows:
        t = data.teachers.index.get(row["teacher_id"])
        if t is None:
            continue
        kind, rid = row["kind"], row["resource_id"]
        place = -1
        if kind == "mentor" and rid in data.mentors.index:
            k = data.mentors.index[rid]
            cover[t] += data.mentors.weights[k]
            if not data.mentors.remote[k]:
                place = int(data.schools.municipality[data.mentors.school[k]])
        elif kind == "internship" and rid in data.site_sessions.index:
            site = data.site_sessions.site[data.site_sessions.index[rid]]
            cover[t] += data.sites.weights[site]
            place = int(data.schools.municipality[data.sites.school[site]])
        elif kind == "program" and rid in data.program_sessions.index:
            s = data.program_sessions.index[rid]
            cover[t] += data.programs.weights[data.program_sessions.program[s]]
            place = int(data.program_sessions.municipality[s])
        where.append((t, kind, place))
    return cover, where


def _plan_view(session, plan_id: str, teacher_id: str | None = None):
    plan = get_plan(session, plan_id)
    rows = csv_rows(plan_file(session, plan, "assignments.csv"))
    if teacher_id is not None:
        rows = [row for row in rows if row["teacher_id"] == teacher_id]
    data = region_data(session, plan.region_id)
    params = params_from_dict({k: v for k, v in (loads(plan.params) or {}).items()
                               if k in ("deficit_threshold", "low_results_priority", "training_due_years",
                                        "training_due_priority")})
    need = need_matrix(data, params)
    cover, where = _cover(data, rows)
    return plan, rows, data, need, cover, where


@router.get("/v1/plans/{plan_id}/municipalities", tags=["plans"], dependencies=[Viewer],
            responses={**ERRORS, **PLAN_NOT_FOUND, **NOT_READY},
            summary="Need, covered need, spending and assignments per municipality; trips for the map")
def plan_municipalities(plan_id: str, session: SessionDep) -> dict:
    plan, rows, data, need, cover, where = _plan_view(session, plan_id)
    m = data.municipalities
    n = len(m)
    teacher_mun = data.teacher_municipality
    covered = (need * np.minimum(1.0, cover)).sum(axis=1)
    need_t = need.sum(axis=1)
    reached = np.zeros(len(data.teachers), bool)
    counts = {kind: np.zeros(n, int) for kind in ("mentor", "internship", "program")}
    spent = np.zeros(n)
    trips: dict[tuple[int, int, str], int] = {}
    for (t, kind, place), row in zip(where, rows, strict=False):
        reached[t] = True
        home = int(teacher_mun[t])
        counts[kind][home] += 1
        if str(row.get("funded_by", "")).startswith("municipality:"):
            spent[home] += float(row.get("cost_rub") or 0)
        if place >= 0:
            trips[(home, place, kind)] = trips.get((home, place, kind), 0) + 1
    budgets = data.budgets.municipality_rub
    table = []
    for i in range(n):
        mine = teacher_mun == i
        table.append({
            "municipality_id": m.ids[i], "name": m.names[i], "teachers": int(mine.sum()),
            "teachers_with_need": int((need_t[mine] > 0).sum()), "teachers_reached": int(reached[mine].sum()),
            "need_total": _num(need_t[mine].sum()), "need_covered": _num(covered[mine].sum()),
            "spent_rub": int(round(spent[i])), "budget_rub": None if budgets[i] < 0 else int(budgets[i]),
            "assignments": {kind: int(c[i]) for kind, c in counts.items()},
        })
    travel = data.travel_minutes
    return {
        "plan_id": plan.id, "region_id": plan.region_id,
        "need_total": _num(need_t.sum()), "need_covered": _num(covered.sum()),
        "municipalities": table,
        "trips": [{"from": m.ids[a], "to": m.ids[b], "kind": kind, "count": count,
                   "minutes": _num(travel[a, b])} for (a, b, kind), count in sorted(trips.items())],
    }


@router.get("/v1/plans/{plan_id}/teachers/{teacher_id}", tags=["plans"], dependencies=[Viewer],
            responses={**ERRORS, **PLAN_NOT_FOUND, **NOT_READY},
            summary="One teacher: school, municipality, and need per competency before and after the plan")
def plan_teacher(plan_id: str, teacher_id: str, session: SessionDep) -> dict:
    plan, rows, data, need, cover, _ = _plan_view(session, plan_id, teacher_id)
    t = data.teachers.index.get(teacher_id)
    if t is None:
        raise HTTPException(404, "Учитель не найден в регионе плана (teacher not found)")
    audit_export(session, plan, "teacher", teacher_id=teacher_id)
    school = int(data.teachers.school[t])
    mun = int(data.schools.municipality[school])
    comps = data.competencies
    scores = data.teachers.scores[t]
    per = []
    for c in range(len(comps)):
        covered = need[t, c] * min(1.0, cover[t, c])
        per.append({"competency_id": comps.ids[c], "name": comps.names[c],
                    "score": None if np.isnan(scores[c]) else _num(scores[c]),
                    "need": _num(need[t, c]), "covered": _num(covered), "cover": _num(min(1.0, cover[t, c]))})
    return {
        "plan_id": plan.id, "teacher_id": teacher_id, "role": "manager" if data.teachers.is_manager[t] else "teacher",
        "school_id": data.schools.ids[school], "school": data.schools.names[school],
        "low_results": bool(data.schools.low_results[school]),
        "municipality_id": data.municipalities.ids[mun], "municipality": data.municipalities.names[mun],
        "voucher_rub": int(data.teachers.voucher_rub[t]), "max_hours": _num(data.teachers.max_hours[t]),
        "need_total": _num(need[t].sum()), "need_covered": _num(sum(p["covered"] for p in per)),
        "competencies": per,
    }


FILE_TYPES = {"assignments.csv": "text/csv; charset=utf-8", "routes.csv": "text/csv; charset=utf-8",
              "clusters.csv": "text/csv; charset=utf-8", "summary.json": "application/json",
              "plan.xlsx": XLSX}


@router.get("/v1/plans/{plan_id}/files/{name}", tags=["plans"], dependencies=[Viewer], response_class=Response,
            responses={**ERRORS, **PLAN_NOT_FOUND, **NOT_READY,
                       200: {"description": "the file as written by `marshrut plan` (docs/plan-files.md)"}},
            summary="A plan file for download: assignments.csv, routes.csv, clusters.csv, summary.json, plan.xlsx")
def plan_download(plan_id: str, name: str, session: SessionDep) -> Response:
    if name not in FILE_TYPES:
        raise HTTPException(404, "Нет такого файла плана (unknown plan file)")
    plan = get_plan(session, plan_id)
    stem, _, ext = name.rpartition(".")
    content = plan_file(session, plan, name)
    audit_export(session, plan, name)
    return attachment(content, f"{stem}-{plan.id}.{ext}", FILE_TYPES[name])
