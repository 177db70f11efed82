"""The Excel round trip: a planner's decisions in plan.xlsx become pinned and forbidden assignments.

In the sheet «Маршруты» of plan.xlsx (engine/workbook.py) a planner writes «закрепить» (pin: the
next plan must keep it) or «исключить» (forbid: the next plan must not contain it) in the column
«Решение» of a row, or adds a row of their own (Код педагога, Вид, Код ресурса, Решение), and
gives the workbook back (`marshrut replan PLAN --from-xlsx FILE`, or the upload on the web page).

Every row is checked against the region: an unknown decision, kind, teacher or resource, or one
assignment both pinned and forbidden, is a problem reported with its row and column, like a
bundle problem, and then nothing is re-planned.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .options import build_activities
from .params import KINDS, AssignmentRef, Params
from .plan_view import KIND_RU
from .problems import InputError, ProblemReport
from .region import RegionData
from .workbook import DECISION_COLUMN, FORBID, PIN

SHEET = "Маршруты"
TEACHER, KIND, RESOURCE = "Код педагога", "Вид", "Код ресурса"
# What a planner may type (any case, spaces around ignored); English beside the Russian.
DECISIONS = {PIN: "pin", "закрепить": "pin", "pin": "pin", "keep": "pin",
             FORBID: "forbid", "исключить": "forbid", "forbid": "forbid", "exclude": "forbid"}
KIND_OF = {**{v.lower(): k for k, v in KIND_RU.items()}, **{k: k for k in KINDS},
           "наставник": "mentor", "стажировка": "internship", "программа": "program"}
TITLE = "Ошибки в книге решений (plan.xlsx, лист «Маршруты»)"


@dataclass
class Decisions:
    pinned: list[AssignmentRef] = field(default_factory=list)
    forbidden: list[AssignmentRef] = field(default_factory=list)
    rows: int = 0  # rows of the sheet read

    def apply(self, params: Params) -> Params:
        """The parameters with these decisions added to their own pinned and forbidden lists."""
        pinned = list(dict.fromkeys([*params.pinned, *self.pinned]))
        forbidden = list(dict.fromkeys([*params.forbidden, *self.forbidden]))
        return params.model_copy(update={"pinned": pinned, "forbidden": forbidden})


def read_decisions(source: str | Path | bytes, region: RegionData, filename: str | None = None) -> Decisions:
    """Reads the decisions of a returned plan.xlsx; raises InputError listing every problem."""
    import openpyxl

    name = filename or (Path(source).name if not isinstance(source, bytes) else "plan.xlsx")
    where = f"{name}: {SHEET}"
    report = ProblemReport()
    try:
        content = source if isinstance(source, bytes) else Path(source).read_bytes()
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except FileNotFoundError:
        report.add(name, "файл не найден", code="not_found")
        raise _error(report) from None
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
        report.add(name, f"это не книга Excel (.xlsx): {str(error)[:200]}", code="not_xlsx")
        raise _error(report) from None
    try:
        if SHEET not in workbook.sheetnames:
            report.add(name, f"в книге нет листа «{SHEET}»", code="missing_sheet")
            raise _error(report)
        rows = workbook[SHEET].iter_rows(values_only=True)
        header = [_text(v) for v in next(rows, ())]
        columns = {}
        for wanted in (TEACHER, KIND, RESOURCE, DECISION_COLUMN):
            if wanted in header:
                columns[wanted] = header.index(wanted)
            else:
                report.add(where, "нет обязательного столбца", code="missing_column", column=wanted)
        if report:
            raise _error(report)
        decisions = _read_rows(rows, columns, region, where, report)
    finally:
        workbook.close()
    if report:
        raise _error(report)
    return decisions


def _read_rows(rows, columns: dict[str, int], region: RegionData, where: str, report: ProblemReport) -> Decisions:
    acts = build_activities(region)
    out = Decisions()
    seen: dict[tuple, tuple[str, int]] = {}
    for row_number, row in enumerate(rows, start=2):
        out.rows += 1
        value = lambda column: _text(row[columns[column]]) if columns[column] < len(row) else ""  # noqa: E731
        said = value(DECISION_COLUMN)
        if not said:
            continue
        decision = DECISIONS.get(said.lower())
        if decision is None:
            report.add(where, f"решение должно быть «{PIN}», «{FORBID}» или пусто", code="bad_value",
                       row=row_number, column=DECISION_COLUMN, value=said)
            continue
        teacher, kind_text, resource = value(TEACHER), value(KIND), value(RESOURCE)
        kind = KIND_OF.get(kind_text.lower())
        ok = True
        if teacher not in region.teachers.index:
            report.add(where, "нет такого педагога в регионе плана" if teacher else "не указан код педагога",
                       code="unknown_id" if teacher else "missing_value", row=row_number, column=TEACHER,
                       value=teacher)
            ok = False
        if kind is None:
            report.add(where, "вид: " + ", ".join(f"«{v}»" for v in KIND_RU.values()), code="bad_value",
                       row=row_number, column=KIND, value=kind_text)
            ok = False
        elif acts.lookup(kind, resource) is None:
            report.add(where, f"нет такого ресурса вида «{KIND_RU[kind]}» в регионе плана" if resource
                       else "не указан код ресурса", code="unknown_id" if resource else "missing_value",
                       row=row_number, column=RESOURCE, value=resource)
            ok = False
        if not ok:
            continue
        key = (teacher, kind, resource)
        if key in seen and seen[key][0] != decision:
            report.add(where, f"это назначение уже отмечено иначе в строке {seen[key][1]}", code="conflict",
                       row=row_number, column=DECISION_COLUMN, value=said)
            continue
        seen.setdefault(key, (decision, row_number))
        ref = AssignmentRef(teacher_id=teacher, kind=kind, resource_id=resource)
        target = out.pinned if decision == "pin" else out.forbidden
        if ref not in target:
            target.append(ref)
    return out


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _error(report: ProblemReport) -> InputError:
    return InputError(report.problems, report.total, title=TITLE)
