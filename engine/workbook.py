"""plan.xlsx: the planner's workbook (SPEC §6 v2), in Russian, one function per sheet.

    Сводка          the plan's headline figures
    Маршруты        each teacher's route step by step, with a column «Решение» for the round trip
                    (engine/decisions.py reads it back: «закрепить» / «исключить»)
    Назначения      one row per assignment: who, what, when, how much, who pays
    Муниципалитеты  per municipality: need, covered, teachers reached, spending against budget
    Ресурсы         every mentor and session: seats, taken, free
    Профили         the deficit profiles (clusters) and their mean deficits
    Причины         why needs are left uncovered (engine/explain.py), over the region, per
                    municipality and per competency
    Без маршрута    the teachers with need who got nothing, each with the reason (engine/fairness.py)

A sheet is a function of a WorkbookContext returning a Sheet (title, columns, rows); SHEETS lists
them in order, and another sheet slots in by adding a function there. Every sheet gets a bold
frozen header row, a filter over its rows, sensible widths and number formats (dates as dates
shown ДД.ММ.ГГГГ, roubles, shares as percentages), printed landscape on A4. Written with
XlsxWriter: the writing counts in the planner's time limit (engine/deadline.py), and XlsxWriter
writes the 745,000 cells of a region of 21,000 teachers about twice as fast as openpyxl's
write-only mode did (about 5 s against 10 s on 2 shared cores). openpyxl still reads workbooks
(bundles in .xlsx, the planner's decisions: engine/decisions.py).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from xlsxwriter import Workbook

from .params import KINDS
from .plan_view import KIND_RU, PlanView, activity_texts

# Number formats (Excel's codes; LibreOffice reads the same).
DATE = "DD.MM.YYYY"
RUB = '#,##0 "₽"'
SHARE = "0.0%"
NUMBER = "0.000"
INTEGER = "#,##0"

DECISION_COLUMN = "Решение"
PIN, FORBID = "закрепить", "исключить"

STATUS_RU = {"OPTIMAL": "оптимален (доказано)", "FEASIBLE": "допустимый (оптимальность не доказана)"}
SCOPE_RU = {"region": "регион", "municipality": "муниципалитет", "competency": "компетенция"}
REASON_GROUP_RU = {"no_option": "нет подходящего варианта", "taken": "места заняты", "money": "не хватило денег",
                   "teacher_full": "маршрут педагога заполнен", "cost": "дороже пользы",
                   "improvable": "план можно улучшить"}
REASON_RU = {
    "no_resource": "в регионе нет ресурса по этой компетенции",
    "out_of_travel": "ресурс только дальше допустимой дороги",
    "not_allowed": "варианты запрещены правилами",
    "all_used": "все подходящие ресурсы уже в маршруте",
    "capacity_full": "места заняты",
    "municipal_budget": "исчерпан бюджет муниципалитета",
    "region_budget": "исчерпан бюджет региона",
    "voucher": "исчерпан сертификат",
    "hours_full": "нет часов",
    "dates_full": "пересечение дат",
    "kind_full": "лимит мероприятий этого вида",
    "same_program_or_site": "уже есть сеанс той же программы или площадки",
    "not_worth_cost": "стоит больше, чем даёт",
    "improvable": "помещается и дал бы пользу: план не оптимален",
}


@dataclass(frozen=True)
class Column:
    header: str
    width: float = 14
    number_format: str | None = None


@dataclass
class Sheet:
    title: str
    columns: list[Column]
    rows: Iterable[tuple]
    # Sheet-specific touches after the rows are known (e.g. a drop-down list): (XlsxWriter worksheet,
    # rows written).
    finish: Callable | None = None
    freeze: str = "A2"


@dataclass
class WorkbookContext:
    view: PlanView
    summary: dict
    explanation: object | None = None  # engine.explain.Explanation
    clusters: pd.DataFrame | None = None  # clusters.csv: teacher_id, cluster, profile
    extra: dict = field(default_factory=dict)  # room for sheets added later


# ---- sheets ------------------------------------------------------------------------------------

def summary_sheet(ctx: WorkbookContext) -> Sheet:
    s = ctx.summary
    spending = s.get("spending", {})
    region = ctx.view.region
    with_need = s.get("teachers_with_need", 0)
    rows = [
        ("Регион", region.name, None),
        ("Начало периода", region.period_start, DATE),
        ("Окончание периода", region.period_end, DATE),
        ("Статус плана", STATUS_RU.get(s.get("status"), s.get("status")), None),
        ("Целевая функция (взвешенная потребность)", s.get("objective"), NUMBER),
        ("Доказанная верхняя граница", s.get("bound"), NUMBER),
        ("Разрыв до оптимума", s.get("gap"), "0.00%"),
        ("Время решения, с", s.get("solve_seconds"), "0.0"),
        ("Педагогов", s.get("teachers"), INTEGER),
        ("Педагогов с дефицитами", with_need, INTEGER),
        ("Педагогов с маршрутом", s.get("teachers_reached"), INTEGER),
        ("Доля охваченных из педагогов с дефицитами",
         (s.get("teachers_reached", 0) / with_need) if with_need else None, SHARE),
        ("Потребность всего", s.get("need_total"), NUMBER),
        ("Закрыто потребности", s.get("need_covered"), NUMBER),
        ("Доля закрытой потребности", s.get("need_covered_share"), SHARE),
        *[(f"Назначений: {KIND_RU[k].lower()}", s.get("assignments", {}).get(k, 0), INTEGER) for k in KINDS],
        ("Стоимость плана, ₽", s.get("cost_total_rub"), RUB),
        ("Из сертификатов, ₽", spending.get("voucher_rub"), RUB),
        ("Из бюджетов муниципалитетов, ₽", spending.get("municipalities_rub"), RUB),
        ("Бюджет региона, ₽", spending.get("region_budget_rub"), RUB),
        ("Доля бюджета региона", (spending.get("municipalities_rub", 0) / spending["region_budget_rub"])
         if spending.get("region_budget_rub") else None, SHARE),
    ]
    return Sheet("Сводка", [Column("Показатель", 46), Column("Значение", 40)],
                 [(label, _Formatted(value, fmt)) for label, value, fmt in rows])


TEACHER_DETAIL_KEYS = ("full_name", "position", "subject")
ROUTE_KEYS = ["teacher_id", "full_name", "position", "subject", "role", "school_id", "school", "municipality_id",
              "municipality", "step", "kind_ru", "resource_id", "name", "host", "place", "format", "start", "end",
              "hours", "cost_rub", "fund", "addresses", "need_total", "need_covered"]
# Widths hold the usual values whole (a text cell is cut at its neighbour): «учитель начальных классов»,
# «русский язык и литература», and «Кто оплачивает»'s «Сертификат (персонифицированное финансирование)».
ROUTE_COLUMNS = [
    Column("Код педагога", 14), Column("ФИО", 28), Column("Должность", 28), Column("Предмет", 22),
    Column("Роль", 13), Column("Код школы", 11), Column("Школа", 34), Column("Код муниципалитета", 12),
    Column("Муниципалитет", 24), Column("Шаг", 6), Column("Вид", 16), Column("Код ресурса", 12),
    Column("Мероприятие", 48), Column("Организатор / принимающая школа", 36), Column("Место", 20),
    Column("Формат", 13), Column("Начало", 12, DATE), Column("Окончание", 12, DATE), Column("Часы", 8),
    Column("Стоимость, ₽", 13, RUB), Column("Кто оплачивает", 48), Column("Закрывает дефициты", 40),
    Column("Потребность педагога", 13, NUMBER), Column("Закрыто маршрутом", 13, NUMBER),
]


def routes_sheet(ctx: WorkbookContext) -> Sheet:
    steps = ctx.view.steps
    details = ctx.view.region.teachers.details
    # The optional columns of teachers.csv appear where the bundle has them.
    keep = [i for i, key in enumerate(ROUTE_KEYS) if key not in TEACHER_DETAIL_KEYS or key in details]
    columns = [ROUTE_COLUMNS[i] for i in keep] + [Column(DECISION_COLUMN, 14)]
    keys = [ROUTE_KEYS[i] for i in keep]
    rows = (row + ("",) for row in steps[keys].itertuples(index=False, name=None))

    def decision_list(sheet, n_rows: int) -> None:
        last = len(columns) - 1
        sheet.data_validation(1, last, max(1, n_rows), last, {
            "validate": "list", "source": [PIN, FORBID], "ignore_blank": True, "show_input": False,
            "show_error": True, "error_title": DECISION_COLUMN, "error_message": f"«{PIN}», «{FORBID}» или пусто"})

    return Sheet("Маршруты", columns, rows, finish=decision_list, freeze="B2")


def assignments_sheet(ctx: WorkbookContext) -> Sheet:
    steps = ctx.view.steps
    # The accountant's list: who, what, when, how much, from which fund (the school and the rest are in
    # «Маршруты»; fewer cells also keep a region's workbook quick to write).
    columns = [Column("Код педагога", 14), Column("Вид", 16), Column("Код ресурса", 12), Column("Мероприятие", 48),
               Column("Реестровый номер", 16), Column("Организатор / принимающая школа", 36),
               Column("Начало", 12, DATE), Column("Окончание", 12, DATE), Column("Часы", 8),
               Column("Стоимость, ₽", 13, RUB), Column("Кто оплачивает", 48), Column("Код источника", 20)]
    keys = ["teacher_id", "kind_ru", "resource_id", "name", "registry_id", "host", "start", "end", "hours", "cost_rub",
            "fund", "funded_by"]
    return Sheet("Назначения", columns, steps[keys].itertuples(index=False, name=None))


def municipalities_sheet(ctx: WorkbookContext) -> Sheet:
    view = ctx.view
    region = view.region
    n = len(region.municipalities)
    home = region.teacher_municipality
    need_t, covered_t = view.need_total, view.need_covered
    reached = np.zeros(len(region.teachers), bool)
    reached[view.teacher] = True
    mun_of_step = home[view.teacher]
    kinds = view.activities.kind[view.activity]
    per_kind = [np.bincount(mun_of_step[kinds == k], minlength=n) for k in range(3)]
    spent = np.bincount(mun_of_step, weights=view.activities.budget_rub[view.activity], minlength=n)
    vouchers = np.bincount(mun_of_step, weights=view.activities.voucher_rub[view.activity], minlength=n)
    teachers = np.bincount(home, minlength=n)
    with_need = np.bincount(home, weights=need_t > 0, minlength=n)
    reached_n = np.bincount(home, weights=reached & (need_t > 0), minlength=n)
    reached_all = np.bincount(home, weights=reached, minlength=n)
    need = np.bincount(home, weights=need_t, minlength=n)
    covered = np.bincount(home, weights=covered_t, minlength=n)
    budgets = region.budgets.municipality_rub
    rows = []
    for m in range(n):
        budget = int(budgets[m]) if budgets[m] >= 0 else None
        rows.append((region.municipalities.ids[m], region.municipalities.names[m], int(teachers[m]),
                     int(with_need[m]), int(reached_all[m]), _share(reached_n[m], with_need[m]), float(need[m]),
                     float(covered[m]), _share(covered[m], need[m]), int(per_kind[0][m]), int(per_kind[1][m]),
                     int(per_kind[2][m]), int(spent[m]), budget, _share(spent[m], budget) if budget else None,
                     int(vouchers[m])))
    columns = [Column("Код", 11), Column("Муниципалитет", 30), Column("Педагогов", 11, INTEGER),
               Column("С дефицитами", 12, INTEGER), Column("С маршрутом", 12, INTEGER),
               Column("Доля охваченных (с дефицитами)", 14, SHARE), Column("Потребность", 12, NUMBER),
               Column("Закрыто", 12, NUMBER), Column("Доля закрытой", 12, SHARE),
               Column("Наставничество", 13, INTEGER), Column("Стажировки", 12, INTEGER),
               Column("Программы ДПП", 12, INTEGER), Column("Расход бюджета, ₽", 15, RUB),
               Column("Бюджет муниципалитета, ₽", 16, RUB), Column("Доля бюджета", 11, SHARE),
               Column("Из сертификатов, ₽", 15, RUB)]
    return Sheet("Муниципалитеты", columns, rows)


def resources_sheet(ctx: WorkbookContext) -> Sheet:
    view = ctx.view
    region, acts = view.region, view.activities
    used = np.bincount(view.activity, minlength=len(acts))
    # The same texts the steps carry, for every activity, used or not.
    names, hosts, registry, places, formats = activity_texts(region, acts)
    rows = []
    for a in range(len(acts)):
        kind = KINDS[acts.kind[a]]
        school = int(acts.school[a])
        dated = kind != "mentor"
        rows.append((KIND_RU[kind], acts.ids[a], names[a], hosts[a], region.schools.ids[school] if school >= 0 else "",
                     places[a], formats[a], _date(acts.start[a]) if dated else None,
                     _date(acts.end[a]) if dated else None, float(acts.hours[a]), int(acts.cost_rub[a]),
                     int(acts.capacity[a]), int(used[a]), int(acts.capacity[a] - used[a]),
                     _share(used[a], acts.capacity[a])))
    columns = [Column("Вид", 16), Column("Код", 12), Column("Название", 48),
               Column("Организатор / принимающая школа", 36), Column("Код школы", 11), Column("Место", 20),
               Column("Формат", 13), Column("Начало", 12, DATE), Column("Окончание", 12, DATE),
               Column("Часы", 8), Column("Стоимость, ₽", 13, RUB), Column("Мест", 8, INTEGER),
               Column("Занято", 8, INTEGER), Column("Свободно", 9, INTEGER), Column("Загрузка", 10, SHARE)]
    return Sheet("Ресурсы", columns, rows)


def profiles_sheet(ctx: WorkbookContext) -> Sheet:
    profiles = ctx.summary.get("profiles") or []
    region = ctx.view.region
    competencies = list(region.competencies.ids)
    names = dict(zip(region.competencies.ids, region.competencies.names))
    columns = [Column("Профиль", 9, INTEGER), Column("Название профиля", 34), Column("Педагогов", 11, INTEGER)]
    columns += [Column(f"Дефицит: {names[c]}", 14, NUMBER) for c in competencies]
    rows = [(p["cluster"], p["name"], p["size"], *[(p.get("mean_deficit") or {}).get(c) for c in competencies])
            for p in profiles]
    return Sheet("Профили", columns, rows)


def reasons_sheet(ctx: WorkbookContext) -> Sheet:
    """The explanation's reason totals: over the region, per municipality, per competency."""
    region = ctx.view.region
    totals = getattr(ctx.explanation, "totals", None)
    label = {"municipality": dict(zip(region.municipalities.ids, region.municipalities.names)),
             "competency": dict(zip(region.competencies.ids, region.competencies.names))}
    rows = []
    if totals is not None:
        for r in totals.itertuples(index=False):
            scope_id = "" if r.scope == "region" else str(r.scope_id)
            name = region.name if r.scope == "region" else label.get(r.scope, {}).get(scope_id, scope_id)
            rows.append((SCOPE_RU.get(r.scope, r.scope), scope_id, name,
                         REASON_GROUP_RU.get(r.reason_group, r.reason_group), REASON_RU.get(r.reason, r.reason),
                         r.reason, int(r.needs), float(r.need_left)))
    columns = [Column("Охват", 15), Column("Код", 12), Column("Название", 34), Column("Группа причин", 26),
               Column("Причина", 44), Column("Код причины", 18), Column("Непокрытых потребностей", 14, INTEGER),
               Column("Не закрыто потребности", 14, NUMBER)]
    return Sheet("Причины", columns, rows)


def left_out_sheet(ctx: WorkbookContext) -> Sheet:
    """The teachers with need and no assignment (engine.fairness.left_out_rows), names beside ids."""
    region = ctx.view.region
    left_out = ctx.extra.get("left_out")
    school_name = dict(zip(region.schools.ids, region.schools.names))
    municipality_name = dict(zip(region.municipalities.ids, region.municipalities.names))
    rows = []
    if left_out is not None:
        for r in left_out.itertuples(index=False):
            last = dt.date.fromisoformat(r.last_training_date) if r.last_training_date else None
            rows.append((r.teacher_id, r.school_id, school_name.get(r.school_id, ""), r.municipality_id,
                         municipality_name.get(r.municipality_id, ""), "да" if r.low_results else "нет",
                         "да" if r.due else "нет", last, float(r.need), int(r.deficits),
                         REASON_GROUP_RU.get(r.reason_group, r.reason_group), r.reason_text, r.reason, r.detail,
                         r.all_reason_groups))
    columns = [Column("Педагог (id)", 12), Column("Школа (id)", 10), Column("Школа", 34), Column("Муниципалитет (id)", 12),
               Column("Муниципалитет", 24), Column("Школа с низкими результатами", 14),
               Column("Срок повышения квалификации истёк", 14), Column("Последнее обучение", 13, DATE),
               Column("Потребность", 12, NUMBER), Column("Дефицитов", 10, INTEGER), Column("Группа причин", 24),
               Column("Причина", 44), Column("Код причины", 18), Column("Подробнее", 40), Column("Все причины", 24)]
    return Sheet("Без маршрута", columns, rows)


SHEETS: list[Callable[[WorkbookContext], Sheet]] = [
    summary_sheet, routes_sheet, assignments_sheet, municipalities_sheet, resources_sheet, profiles_sheet,
    reasons_sheet, left_out_sheet,
]


# ---- writing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Formatted:
    """A value with its own number format (the summary's rows differ in kind)."""

    value: object
    number_format: str | None


# The header row: bold (in the body's font, XlsxWriter's default Calibri 11), shaded, wrapped at the top.
HEADER_STYLE = {"bold": True, "pattern": 1, "bg_color": "#DDE7F0", "text_wrap": True, "valign": "top"}
HEADER_HEIGHT = 32  # points: two lines of a wrapped header
HEADER_LINES = 2
# A bold Cyrillic letter of a header is wider than the unit of a column's width (the body font's
# digit): about 1.2 units where Calibri is absent and LibreOffice shows the sheet in DejaVu Sans
# (Debian's fonts-dejavu-core), e.g. «Дефицитов» breaks at 10 and fits at 11. A column is widened
# until its header wraps into the header row's lines without breaking a word (header_width).
HEADER_CHARACTER_WIDTH = 1.2
A4 = 9  # Excel's paper size code
# openpyxl wrote a column's width as given, in characters of the stored width; XlsxWriter takes pixels
# (7 per character of Calibri 11) and stores pixels / 7, so widths stay exactly what they were.
PIXELS_PER_CHARACTER = 7
# Excel's day number of a date from 1900-03-01 on is its ordinal less this (day 60 is the phantom
# 1900-02-29 Excel keeps for Lotus 1-2-3; XlsxWriter counts the same way).
EXCEL_DAY_ZERO = dt.date(1899, 12, 30).toordinal()
EXCEL_DAY_FROM = dt.date(1900, 3, 1)


def write_workbook(ctx: WorkbookContext, path: str | Path,
                   sheets: list[Callable[[WorkbookContext], Sheet]] | None = None) -> Path:
    path = Path(path)
    workbook = _workbook(path)
    formats = _Formats(workbook)
    for make in sheets or SHEETS:
        _write_sheet(workbook, formats, make(ctx))
    workbook.close()  # the file is written here, whole, or (a sheet failed) not at all
    return path


def write_frames(frames: dict[str, pd.DataFrame], target) -> None:
    """Frames as plain sheets, written as every sheet of plan.xlsx is (header, widths, frozen row,
    filter): what engine.deadline times to know how fast this machine writes a workbook now.
    `target`: a path or a binary file object."""
    workbook = _workbook(target)
    formats = _Formats(workbook)
    for title, frame in frames.items():
        rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        _write_sheet(workbook, formats, Sheet(title, [Column(str(c)) for c in frame.columns], rows))
    workbook.close()


def _workbook(target) -> Workbook:
    # Not XlsxWriter's constant_memory mode: it writes every string inline, escaped again in every cell,
    # and measured slower (altai-krai, 745,000 cells: 6.3 s against 5.0 s) with a larger file (4.4 MB
    # against 3.2 MB); shared strings are written once. in_memory: the workbook's parts are assembled in
    # memory, not in a dozen temporary files first, which cost ~45 ms a workbook on a loaded machine
    # (most of the time of engine.deadline's small pace sheet, and of a district's workbook), and the
    # same for a region's. Cells and parts held until the end add ~160 MB at the peak for 21,000
    # teachers. Every value is written by its own type's method, never guessed from text (a name starting
    # with "=" stays text, a web address is not made a link).
    return Workbook(str(target) if isinstance(target, Path) else target,
                    {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})


class _Formats:
    """The workbook's cell formats, one per number format (XlsxWriter wants each made once)."""

    def __init__(self, workbook: Workbook):
        self.workbook = workbook
        self.header = workbook.add_format(HEADER_STYLE)
        self._numbers: dict[str, object] = {}

    def number(self, number_format: str | None):
        if number_format is None:
            return None
        if number_format not in self._numbers:
            self._numbers[number_format] = self.workbook.add_format({"num_format": number_format})
        return self._numbers[number_format]


def _write_sheet(workbook: Workbook, formats: _Formats, sheet: Sheet) -> None:
    ws = workbook.add_worksheet(sheet.title)
    n_columns = len(sheet.columns)
    for i, column in enumerate(sheet.columns):
        ws.set_column_pixels(i, i, round(header_width(column.header, column.width) * PIXELS_PER_CHARACTER))
    ws.freeze_panes(sheet.freeze)
    # Printed (or converted to PDF) landscape, at most two pages wide, the header row and first column
    # on every page.
    ws.set_landscape()
    ws.set_paper(A4)
    ws.fit_to_pages(min(2, max(1, n_columns // 8)), 0)
    ws.repeat_rows(0)
    ws.repeat_columns(0)
    ws.set_row(0, HEADER_HEIGHT)
    for i, column in enumerate(sheet.columns):
        ws.write_string(0, i, column.header, formats.header)
    write_cell = _CellWriter(ws, formats, [formats.number(c.number_format) for c in sheet.columns])
    n_rows = 0
    for n_rows, row in enumerate(sheet.rows, start=1):
        write_cell.row(n_rows, row)
    ws.autofilter(0, 0, n_rows, n_columns - 1)
    if sheet.finish is not None:
        sheet.finish(ws, n_rows)


def header_width(header: str, width: float) -> float:
    """The least width from `width` up (in whole steps) at which `header`, wrapped at spaces, takes at
    most HEADER_LINES lines and no word is wider than the column (a spreadsheet breaks such a word
    mid-way)."""
    words = header.split()
    while not _wraps(words, width / HEADER_CHARACTER_WIDTH):
        width += 1
    return width


def _wraps(words: list[str], letters: float) -> bool:
    lines, line = 1, -1
    for word in words:
        if len(word) > letters:
            return False
        if line + 1 + len(word) <= letters:
            line += 1 + len(word)
        else:
            lines, line = lines + 1, len(word)
    return lines <= HEADER_LINES


class _CellWriter:
    """Writes a row's values, each by its type, with its column's number format (a _Formatted value
    brings its own). Blank values (None, "", NaN, NaT) write nothing, as openpyxl's empty cells did.
    A date is its day number in a date format (what write_datetime writes too, without its conversion);
    a date in a column without a number format is shown ДД.ММ.ГГГГ all the same."""

    def __init__(self, ws, formats: _Formats, column_formats: list):
        self.formats, self.column_formats = formats, column_formats
        self.date_format = formats.number(DATE)
        self.date_formats = [f or self.date_format for f in column_formats]
        self.string, self.number, self.datetime = ws.write_string, ws.write_number, ws.write_datetime
        self.boolean = ws.write_boolean

    def row(self, r: int, values: Iterable) -> None:
        string, number, formats = self.string, self.number, self.column_formats
        for c, value in enumerate(values):
            kind = type(value)
            if kind is str:  # the common cases first, by exact type
                if value:
                    string(r, c, value, formats[c])
            elif kind is int:
                number(r, c, value, formats[c])
            elif kind is float:
                if math.isfinite(value):
                    number(r, c, value, formats[c])
            elif kind is dt.date and value >= EXCEL_DAY_FROM:
                number(r, c, value.toordinal() - EXCEL_DAY_ZERO, self.date_formats[c])
            elif value is not None:
                self.other(r, c, value, formats[c])

    def other(self, r: int, c: int, value, cell_format) -> None:
        if isinstance(value, _Formatted):
            value, cell_format = value.value, self.formats.number(value.number_format)
            if value is None:
                return
        if isinstance(value, str):
            if value:
                self.string(r, c, value, cell_format)
        elif isinstance(value, (bool, np.bool_)):
            self.boolean(r, c, bool(value), cell_format)
        elif isinstance(value, (int, np.integer)):
            self.number(r, c, int(value), cell_format)
        elif isinstance(value, (float, np.floating)):
            if np.isfinite(value):
                self.number(r, c, float(value), cell_format)
        elif isinstance(value, (dt.date, np.datetime64)):
            if pd.isna(value):
                return
            if isinstance(value, (pd.Timestamp, np.datetime64)):
                value = pd.Timestamp(value).date()
            self.datetime(r, c, value, cell_format or self.date_format)
        else:
            self.string(r, c, str(value), cell_format)


def _share(part: float, whole: float | None) -> float | None:
    return float(part) / float(whole) if whole else None


def _date(day_number: int) -> dt.date:
    return dt.date.fromordinal(int(day_number))
