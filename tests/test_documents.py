"""The plan in the hands of the people who act on it: the planner's workbook read back with
openpyxl, the route documents read with python-docx, both converted to PDF by a real LibreOffice
(headless) and read with pdftotext, and the Excel round trip (pinned and forbidden exactly as
marked; every bad row reported, nothing re-planned)."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import docx
import openpyxl
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from marshrut.documents import register as register_documents
from marshrut.engine import InputError, Params, load_bundle, write_plan
from marshrut.engine.decisions import read_decisions
from marshrut.engine.documents import DocumentSet, write_documents
from marshrut.engine.office import convert_to_pdf
from marshrut.engine.pipeline import plan_region
from marshrut.engine.plan_view import plan_view
from marshrut.engine.workbook import DATE, HEADER_LINES, RUB, SHARE, Column, Sheet, write_workbook
from marshrut.whatif import register as register_whatif
from oracle import check_plan
from tiny import tiny_bundle

ARTIFACTS = Path(__file__).parent / "artifacts"
SHEETS = ["Сводка", "Маршруты", "Назначения", "Муниципалитеты", "Ресурсы", "Профили", "Причины", "Без маршрута"]
DETAILS = {"T1": ("Иванова Мария Петровна", "учитель начальных классов", "начальные классы"),
           "T2": ("Петров Олег Ильич", "учитель математики", "математика"),
           "T3": ("Сидорова Анна Сергеевна", "учитель русского языка", "русский язык"),
           "T4": ("Кузнецов Илья Андреевич", "заместитель директора", "")}


def region_tables() -> dict:
    return dict(
        competencies=[("K1", "Читательская грамотность", "fl"), ("K2", "Оценивание образовательных результатов",
                                                                 "pro"),
                      ("K3", "Цифровая образовательная среда", "pro")],
        teachers=[("T1", "S1", "teacher", 50000, 144), ("T2", "S1", "teacher", 50000, 144),
                  ("T3", "S2", "teacher", 50000, 144), ("T4", "S3", "manager", 50000, 144),
                  ("T5", "S1", "teacher", 50000, 144)],
        diagnostics=[("T1", "K1", 35), ("T1", "K2", 50), ("T1", "K3", 40), ("T2", "K1", 50), ("T3", "K2", 40),
                     ("T4", "K1", 30), ("T4", "K2", 45), ("T5", "K1", 90)],
        mentors=[("M1", "", "S3", 2, 1, 5000, 12)], mentor_competencies=[("M1", "K2", 0.7)],
        sites=[("SITE1", "S2", "Стажировочная площадка «Читающая школа»")],
        site_competencies=[("SITE1", "K1", 0.6)],
        site_sessions=[("SS1", "SITE1", "2026-11-10", "2026-11-11", 5, 16, 2000)],
        programs=[("P1", "22-АИРО-101", "АИРО им. А. М. Топорова", "Формирование читательской грамотности",
                   "online", 36, 12000),
                  ("P2", "22-АИРО-202", "АИРО им. А. М. Топорова", "Оценивание образовательных результатов",
                   "offline", 24, 8000)],
        program_competencies=[("P1", "K1", 0.8), ("P2", "K2", 0.5)],
        program_sessions=[("PS1", "P1", "2026-10-01", "2026-10-20", 10, ""),
                          ("PS2", "P2", "2027-02-01", "2027-02-05", 5, "B")],
        budgets=[("region", "", 1_000_000), ("municipality", "A", 500_000)],
    )


def with_details(folder: Path) -> Path:
    """teachers.csv with the optional columns full_name, position, subject (T5 has none)."""
    teachers = pd.read_csv(folder / "teachers.csv", dtype=str, keep_default_na=False)
    for i, column in enumerate(("full_name", "position", "subject")):
        teachers[column] = [DETAILS.get(t, ("", "", ""))[i] for t in teachers["teacher_id"]]
    teachers.to_csv(folder / "teachers.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    root = tmp_path_factory.mktemp("documents")
    bundle = with_details(tiny_bundle(root / "bundle", **region_tables()))
    region = load_bundle(bundle)
    params = Params(time_limit_s=10)
    folder = write_plan(plan_region(region, params), root / "plan")
    return bundle, region, params, folder


def _assignments(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "assignments.csv", dtype=str, keep_default_na=False)


def _header(sheet) -> list[str]:
    return [c.value for c in next(sheet.iter_rows(min_row=1, max_row=1))]


# ---- the workbook ------------------------------------------------------------------------------

def test_workbook_sheets_headers_formats_panes_filters(planned):
    _, region, _, folder = planned
    assignments = _assignments(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    workbook = openpyxl.load_workbook(folder / "plan.xlsx")
    assert workbook.sheetnames == SHEETS
    for sheet in workbook.worksheets:
        assert sheet.freeze_panes in ("A2", "B2"), sheet.title
        last = openpyxl.utils.get_column_letter(sheet.max_column)
        assert sheet.auto_filter.ref == f"A1:{last}{sheet.max_row}", sheet.title
        assert all(cell.font.bold for cell in sheet[1]), sheet.title
        assert all(sheet.column_dimensions[openpyxl.utils.get_column_letter(i)].width >= 6
                   for i in range(1, sheet.max_column + 1)), sheet.title

    routes = workbook["Маршруты"]
    header = _header(routes)
    for column in ("Код педагога", "ФИО", "Должность", "Предмет", "Школа", "Муниципалитет", "Вид", "Код ресурса",
                   "Мероприятие", "Организатор / принимающая школа", "Начало", "Окончание", "Часы", "Стоимость, ₽",
                   "Кто оплачивает", "Решение"):
        assert column in header, column
    rows = [dict(zip(header, r)) for r in routes.iter_rows(min_row=2, values_only=True)]
    assert len(rows) == len(assignments)
    by_key = {(r["Код педагога"], r["Код ресурса"]): r for r in rows}
    for a in assignments.itertuples():
        row = by_key[(a.teacher_id, a.resource_id)]
        assert row["Начало"].date() == dt.date.fromisoformat(a.start)  # a date cell, not text
        assert row["Окончание"].date() == dt.date.fromisoformat(a.end)
        assert row["Стоимость, ₽"] == int(a.cost_rub)
        assert row["Вид"] == {"mentor": "Наставничество", "internship": "Стажировка", "program": "Программа ДПП"}[a.kind]
        t = region.teachers.index[a.teacher_id]
        assert row["Школа"] == region.schools.names[region.teachers.school[t]]
        assert row["ФИО"] == (DETAILS.get(a.teacher_id, ("",))[0] or None)
        if a.funded_by == "voucher":
            assert row["Кто оплачивает"].startswith("Сертификат")
        else:
            municipality = region.municipalities.index[a.funded_by.split(":", 1)[1]]
            assert row["Кто оплачивает"] == f"Бюджет: {region.municipalities.names[municipality]}"
        if a.kind == "program":
            assert row["Организатор / принимающая школа"] == "АИРО им. А. М. Топорова"
    # route order: by teacher, then date
    keys = [(r["Код педагога"], r["Начало"]) for r in rows]
    assert keys == sorted(keys)
    column = {name: i for i, name in enumerate(header)}
    second = list(routes.iter_rows(min_row=2, max_row=2))[0]
    assert second[column["Начало"]].number_format == DATE and second[column["Стоимость, ₽"]].number_format == RUB
    (decision,) = routes.data_validations.dataValidation  # the drop-down list of «Решение», on every row
    letter = openpyxl.utils.get_column_letter(header.index("Решение") + 1)
    assert decision.type == "list" and decision.formula1 == '"закрепить,исключить"' and decision.allow_blank
    assert str(decision.sqref) == f"{letter}2:{letter}{routes.max_row}" and decision.showErrorMessage
    assert routes.freeze_panes == "B2"  # the teacher's code stays in sight when scrolling right
    for sheet in workbook.worksheets:  # printed: landscape A4, header row and first column on every page
        assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.paperSize == 9, sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.page_setup.fitToHeight == 0, sheet.title
        assert sheet.print_title_rows == "$1:$1" and sheet.print_title_cols == "$A:$A", sheet.title
        first = sheet["A1"]
        assert first.fill.fgColor.rgb[-6:] == "DDE7F0" and first.alignment.wrap_text, sheet.title
        assert sheet.row_dimensions[1].height >= 30, sheet.title  # two lines of a wrapped header

    assert workbook["Назначения"].max_row == len(assignments) + 1
    municipalities = workbook["Муниципалитеты"]
    header = _header(municipalities)
    table = [dict(zip(header, r)) for r in municipalities.iter_rows(min_row=2, values_only=True)]
    assert {r["Муниципалитет"] for r in table} == set(region.municipalities.names)
    assert sum(r["Потребность"] for r in table) == pytest.approx(summary["need_total"])
    assert sum(r["Закрыто"] for r in table) == pytest.approx(summary["need_covered"])
    assert sum(r["Расход бюджета, ₽"] for r in table) == summary["spending"]["municipalities_rub"]
    assert sum(r["С маршрутом"] for r in table) == summary["teachers_reached"]
    city = next(r for r in table if r["Код"] == "A")
    assert city["Бюджет муниципалитета, ₽"] == 500_000
    share_cell = list(municipalities.iter_rows(min_row=2, max_row=2))[0][header.index("Доля закрытой")]
    assert share_cell.number_format == SHARE

    resources = [dict(zip(_header(workbook["Ресурсы"]), r))
                 for r in workbook["Ресурсы"].iter_rows(min_row=2, values_only=True)]
    used = assignments["resource_id"].value_counts()
    assert {r["Код"]: r["Занято"] for r in resources} == {rid: int(used.get(rid, 0))
                                                        for rid in ("M1", "SS1", "PS1", "PS2")}
    # K3 is addressed by nothing: its need is left with the reason "no resource", in Russian.
    reasons = [dict(zip(_header(workbook["Причины"]), r))
               for r in workbook["Причины"].iter_rows(min_row=2, values_only=True)]
    assert any(r["Код причины"] == "no_resource" and r["Причина"] == "в регионе нет ресурса по этой компетенции"
               for r in reasons)
    summary_rows = dict(workbook["Сводка"].iter_rows(min_row=2, values_only=True))
    assert summary_rows["Педагогов с маршрутом"] == summary["teachers_reached"]
    assert summary_rows["Начало периода"].date() == dt.date(2026, 9, 1)
    # The summary's rows differ in kind: each value carries its own number format.
    formats = {label.value: value.number_format for label, value in workbook["Сводка"].iter_rows(min_row=2)}
    assert formats["Начало периода"] == formats["Окончание периода"] == DATE
    assert formats["Стоимость плана, ₽"] == formats["Бюджет региона, ₽"] == RUB
    assert formats["Доля закрытой потребности"] == SHARE and formats["Педагогов"] == "#,##0"
    for title, columns in (("Назначения", ("Начало", "Окончание")), ("Ресурсы", ("Начало", "Окончание"))):
        sheet = workbook[title]
        at = [_header(sheet).index(c) for c in columns]
        cells = [row[i] for row in sheet.iter_rows(min_row=2) for i in at if row[i].value is not None]
        assert cells and all(c.is_date and c.number_format == DATE for c in cells), title


def test_workbook_as_written_opens_in_libreoffice_with_its_formats(planned, tmp_path):
    """plan.xlsx itself (not saved again by openpyxl) through LibreOffice Calc: every sheet printed,
    dates shown ДД.ММ.ГГГГ, roubles with their sign, shares as percentages."""
    _, _, _, folder = planned
    assignments = _assignments(folder)
    source = tmp_path / "plan.xlsx"
    shutil.copy(folder / "plan.xlsx", source)
    (pdf,) = convert_to_pdf([source])
    text = _pdftotext(pdf)
    for header in ("Показатель", "Код педагога", "Реестровый номер", "Муниципалитет", "Загрузка", "Профиль",
                   "Код причины", "Подробнее"):  # a header of each sheet (a wrapped one breaks its words)
        assert header in text, header
    assert "01.09.2026" in text and "31.05.2027" in text  # the period, in the summary
    for a in assignments.itertuples():
        assert dt.date.fromisoformat(a.start).strftime("%d.%m.%Y") in text
    assert re.search(r"\d ₽", text) and re.search(r"\d[.,]\d ?%", text)
    assert "2026-" not in text  # no date shown as ISO text
    assert _screenshot(pdf, "workbook-summary").stat().st_size > 5_000


def test_every_header_prints_in_two_lines_without_breaking_a_word(planned, tmp_path):
    """plan.xlsx's headers at their columns' widths, written by the workbook's writer without rows and
    printed by LibreOffice: every word printed is a whole word of a header (a header too wide for its
    column breaks a word into pieces, «Муниципали» «тет»), in at most the header row's two lines."""
    _, _, _, folder = planned
    written = openpyxl.load_workbook(folder / "plan.xlsx")
    sheets = [Sheet(ws.title, [Column(c.value, ws.column_dimensions[c.column_letter].width) for c in ws[1]], [])
              for ws in written]
    path = write_workbook(None, tmp_path / "headers.xlsx", sheets=[lambda _, s=s: s for s in sheets])
    (pdf,) = convert_to_pdf([path])
    words = {w for s in sheets for c in s.columns for w in c.header.split()}
    layout = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, check=True, text=True).stdout
    for page in re.findall(r"<page .*?</page>", layout, flags=re.S):
        printed = [(float(y), html.unescape(w)) for y, w in re.findall(r'yMin="([\d.]+)"[^>]*>([^<]*)</word>', page)]
        assert printed and {w for _, w in printed} <= words, {w for _, w in printed} - words
        tops = sorted(y for y, _ in printed)
        lines = 1 + sum(b - a > 1.5 for a, b in zip(tops, tops[1:]))  # a line's words share a top (±0.1 pt)
        assert lines <= HEADER_LINES, page[:2000]


def test_workbook_without_optional_teacher_columns(tmp_path):
    bundle = tiny_bundle(tmp_path / "b", **region_tables())
    region = load_bundle(bundle)
    folder = write_plan(plan_region(region, Params(time_limit_s=5)), tmp_path / "plan")
    header = _header(openpyxl.load_workbook(folder / "plan.xlsx")["Маршруты"])
    assert "Код педагога" in header and not {"ФИО", "Должность", "Предмет"} & set(header)


# ---- the documents -----------------------------------------------------------------------------

def _text(document: docx.Document) -> str:
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


def test_route_documents_per_school_with_summary(planned, tmp_path):
    _, region, params, folder = planned
    assignments = _assignments(folder)
    view = plan_view(region, params, assignments)
    written = write_documents(view, tmp_path / "docs")
    with_route = sorted(set(assignments["teacher_id"]))
    assert written.teachers == len(with_route)
    files = sorted(p.relative_to(tmp_path / "docs").as_posix() for p in (tmp_path / "docs").rglob("*.docx"))
    schools = {region.schools.ids[region.teachers.school[region.teachers.index[t]]] for t in with_route}
    assert len(files) == len(with_route) + len(schools)
    for t in with_route:
        school = region.schools.ids[region.teachers.school[region.teachers.index[t]]]
        matches = [f for f in files if f.endswith(f"/ИОМ_{t}.docx")]
        assert len(matches) == 1 and matches[0].startswith(f"{school} "), (t, matches)
        document = docx.Document(tmp_path / "docs" / matches[0])
        text = _text(document)
        assert "ИНДИВИДУАЛЬНЫЙ ОБРАЗОВАТЕЛЬНЫЙ МАРШРУТ" in text and t in text
        name, position, subject = DETAILS.get(t, ("", "", ""))
        for given in (name, position, subject):
            if given:
                assert given in text
        assert region.schools.names[region.teachers.school[region.teachers.index[t]]] in text
        # the deficits: competency, score, threshold
        deficits = document.tables[1]
        scores = {row.cells[0].text: row.cells[1].text for row in deficits.rows[1:]}
        ti = region.teachers.index[t]
        expected = {region.competencies.names[c]: f"{region.teachers.scores[ti, c]:.0f}"
                    for c in range(len(region.competencies)) if region.teachers.scores[ti, c] < 70}
        assert scores == expected
        assert all(row.cells[2].text == "70" for row in deficits.rows[1:])
        # the steps in date order, dates as ДД.ММ.ГГГГ
        steps = document.tables[2]
        mine = assignments[assignments["teacher_id"] == t].sort_values(["start", "kind", "resource_id"])
        assert len(steps.rows) - 1 == len(mine)
        for row, a in zip(steps.rows[1:], mine.itertuples()):
            start = dt.date.fromisoformat(a.start).strftime("%d.%m.%Y")
            assert row.cells[4].text.startswith(start), (row.cells[4].text, start)
            assert re.fullmatch(r"\d\d\.\d\d\.\d{4}( — \d\d\.\d\d\.\d{4})?", row.cells[4].text)
            assert row.cells[5].text == f"{float(a.hours):g}"
            assert row.cells[7].text.startswith("Сертификат педагога" if a.funded_by == "voucher" else "Бюджет:")
        assert "Педагог ______________" in text and name in text.split("Педагог ______________")[1] if name else True
    # each school's summary lists its teachers with routes
    for school in schools:
        summary_file = next(f for f in files if f.startswith(f"{school} ") and f.endswith(f"Сводка_{school}.docx"))
        text = _text(docx.Document(tmp_path / "docs" / summary_file))
        mine = [t for t in with_route if region.schools.ids[region.teachers.school[region.teachers.index[t]]] == school]
        assert all(t in text for t in mine) and "Расходы" in text


def test_progress_counts_every_document_written(planned, tmp_path):
    _, region, params, folder = planned
    view = plan_view(region, params, _assignments(folder))
    told = []
    written = write_documents(view, tmp_path / "docs", on_progress=lambda *phase: told.append(phase))
    total = len(written.files)
    assert told[0] == ("documents", 0, total) and told[-1] == ("documents", total, total)
    counts = [done for _, done, _ in told]
    assert counts == sorted(counts) and {phase for phase, _, whole in told} == {"documents"}
    assert set(range(total + 1)) <= set(counts)  # each document is told of


def test_a_teacher_without_details_is_named_by_id_only(planned):
    _, region, params, folder = planned
    view = plan_view(region, params, _assignments(folder))
    documents = DocumentSet(view)
    rows = {r["label"]: r["value"] for r in documents.teacher_context(region.teachers.index["T4"])["teacher_rows"]}
    assert rows["Код педагога"] == "T4" and rows["ФИО"] == DETAILS["T4"][0] and "Предмет" not in rows


def test_a_region_replaces_the_template(planned, tmp_path):
    _, region, params, folder = planned
    view = plan_view(region, params, _assignments(folder))
    own = docx.Document()
    own.add_paragraph("Маршрут {{ teacher.teacher_id }}: {{ teacher.school }}")
    table = own.add_table(rows=3, cols=2)
    table.rows[0].cells[0].text = "{%tr for s in steps %}"
    table.rows[1].cells[0].text = "{{ s.dates }}"
    table.rows[1].cells[1].text = "{{ s.kind }} & {{ s.name }}"
    table.rows[2].cells[0].text = "{%tr endfor %}"
    own.save(tmp_path / "own.docx")
    documents = DocumentSet(view, route_template=tmp_path / "own.docx")
    t = int(view.teacher[0])
    rendered = docx.Document(io.BytesIO(documents.teacher_document(t)))
    teacher_id = region.teachers.ids[t]
    assert rendered.paragraphs[0].text == f"Маршрут {teacher_id}: {region.schools.names[region.teachers.school[t]]}"
    assert len(rendered.tables[0].rows) == int((view.teacher == t).sum())
    assert " & " in rendered.tables[0].rows[0].cells[1].text  # escaped for XML, read back as text
    broken = docx.Document()
    broken.add_paragraph("{{ teacher.nickname }}")
    broken.save(tmp_path / "broken.docx")
    with pytest.raises(InputError) as error:
        write_documents(view, tmp_path / "out", route_template=tmp_path / "broken.docx")
    assert "nickname" in str(error.value.problems[0]) and error.value.problems[0].file == "broken.docx"
    assert not (tmp_path / "out").exists()  # nothing written


def test_documents_command_and_school_package(planned, tmp_path):
    bundle, region, params, folder = planned
    app = typer.Typer()
    register_documents(app)
    app.command("noop")(lambda: None)  # a group, as in the real command line
    result = CliRunner().invoke(app, ["documents", str(folder), "--bundle", str(bundle), "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "d").rglob("ИОМ_*.docx"))) == _assignments(folder)["teacher_id"].nunique()
    # A bundle that is not the plan's: every unknown row named, nothing written.
    other = tiny_bundle(tmp_path / "other")
    result = CliRunner().invoke(app, ["documents", str(folder), "--bundle", str(other), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "assignments.csv" in result.output and not (tmp_path / "x").exists()
    view = plan_view(region, params, _assignments(folder))
    documents = DocumentSet(view)
    school = documents.schools()[0]
    with zipfile.ZipFile(io.BytesIO(documents.school_package(school))) as package:
        names = package.namelist()
    assert len(names) == len(documents.teachers_of(school)) + 1
    assert all(n.startswith(documents.folder_name(school) + "/") for n in names)


# ---- PDF through LibreOffice -------------------------------------------------------------------

def _pdftotext(pdf: Path) -> str:
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True).stdout
    return re.sub(r"\s+", " ", text.decode("utf-8"))


def _screenshot(pdf: Path, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(ARTIFACTS / name)], check=True)
    return ARTIFACTS / f"{name}.png"


def test_documents_and_workbook_as_pdf_hold_the_steps_in_cyrillic(planned, tmp_path):
    _, region, params, folder = planned
    assignments = _assignments(folder)
    view = plan_view(region, params, assignments)
    written = write_documents(view, tmp_path / "docs", pdf=True)
    assert len(written.pdfs) == len(written.files)
    assert all(p.with_suffix(".docx").exists() and p.stat().st_size > 1000 for p in written.pdfs)
    t = "T1" if "T1" in set(assignments["teacher_id"]) else assignments["teacher_id"].iloc[0]
    pdf = next(p for p in written.pdfs if p.name == f"ИОМ_{t}.pdf")
    text = _pdftotext(pdf)
    assert "ИНДИВИДУАЛЬНЫЙ ОБРАЗОВАТЕЛЬНЫЙ МАРШРУТ ПЕДАГОГА" in text
    if t in DETAILS:
        assert DETAILS[t][0] in text
    steps = view.steps[view.steps["teacher_id"] == t]
    for step in steps.itertuples():
        for word in step.name.split():
            assert word in text, word
        assert step.start.strftime("%d.%m.%Y") in text and step.kind_ru.split()[0] in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, check=True, text=True).stdout
    assert "Liberation" in fonts or "DejaVu" in fonts  # installed fonts, embedded
    shot = _screenshot(pdf, "route-document")
    assert shot.stat().st_size > 10_000

    # The workbook's «Маршруты» sheet, alone, through LibreOffice Calc.
    workbook = openpyxl.load_workbook(folder / "plan.xlsx")
    for title in workbook.sheetnames:
        if title != "Маршруты":
            del workbook[title]
    workbook.save(tmp_path / "routes-sheet.xlsx")
    (sheet_pdf,) = convert_to_pdf([tmp_path / "routes-sheet.xlsx"])
    text = _pdftotext(sheet_pdf)
    assert "Код педагога" in text and "Решение" in text
    for a in assignments.itertuples():
        assert a.teacher_id in text and dt.date.fromisoformat(a.start).strftime("%d.%m.%Y") in text
    shot = _screenshot(sheet_pdf, "workbook-routes")
    assert shot.stat().st_size > 5_000


# ---- the round trip ----------------------------------------------------------------------------

def _mark(source: Path, target: Path, marks: dict[tuple[str, str], str], new_rows: list[dict] = ()) -> Path:
    workbook = openpyxl.load_workbook(source)
    sheet = workbook["Маршруты"]
    header = _header(sheet)
    column = {name: i + 1 for i, name in enumerate(header)}
    for row in range(2, sheet.max_row + 1):
        key = (sheet.cell(row, column["Код педагога"]).value, sheet.cell(row, column["Код ресурса"]).value)
        if key in marks:
            sheet.cell(row, column["Решение"]).value = marks[key]
    for extra in new_rows:
        row = sheet.max_row + 1
        for name, value in extra.items():
            sheet.cell(row, column[name]).value = value
    workbook.save(target)
    return target


def test_round_trip_pins_and_forbids_exactly_what_was_marked(planned, tmp_path):
    bundle, region, params, folder = planned
    assignments = _assignments(folder)
    assert len(assignments) >= 2
    forbid = assignments.iloc[0]
    pin = assignments.iloc[1]
    marked = _mark(folder / "plan.xlsx", tmp_path / "decisions.xlsx",
                   {(forbid.teacher_id, forbid.resource_id): "исключить",
                    (pin.teacher_id, pin.resource_id): " Закрепить "},
                   [{"Код педагога": "T5", "Вид": "Программа ДПП", "Код ресурса": "PS1", "Решение": "закрепить"}])
    decisions = read_decisions(marked, region)
    key = lambda r: (r.teacher_id, r.kind, r.resource_id)  # noqa: E731
    assert [key(r) for r in decisions.forbidden] == [(forbid.teacher_id, forbid.kind, forbid.resource_id)]
    assert sorted(key(r) for r in decisions.pinned) == sorted([(pin.teacher_id, pin.kind, pin.resource_id),
                                                                ("T5", "program", "PS1")])
    app = typer.Typer()
    register_whatif(app)
    result = CliRunner().invoke(app, ["replan", str(folder), "--bundle", str(bundle), "--from-xlsx", str(marked),
                                      "--out", str(tmp_path / "new"), "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    new = _assignments(tmp_path / "new")
    rows = set(zip(new["teacher_id"], new["kind"], new["resource_id"]))
    assert (forbid.teacher_id, forbid.kind, forbid.resource_id) not in rows
    assert {(pin.teacher_id, pin.kind, pin.resource_id), ("T5", "program", "PS1")} <= rows
    # the new plan names its bundle, as `marshrut plan` does: its documents need no --bundle
    assert json.loads((tmp_path / "new" / "summary.json").read_text(encoding="utf-8"))["bundle"] == \
        str(bundle.resolve())
    as_dicts = lambda refs: [{"teacher_id": a, "kind": b, "resource_id": c} for a, b, c in refs]  # noqa: E731
    assert check_plan(bundle, {"pinned": as_dicts([key(r) for r in decisions.pinned]),
                               "forbidden": as_dicts([key(r) for r in decisions.forbidden])}, new) == []


def test_round_trip_reports_bad_rows_and_changes_nothing(planned, tmp_path):
    bundle, region, _, folder = planned
    assignments = _assignments(folder)
    first, second = assignments.iloc[0], assignments.iloc[1]
    marked = _mark(folder / "plan.xlsx", tmp_path / "bad.xlsx",
                   {(first.teacher_id, first.resource_id): "удалить"},
                   [{"Код педагога": "T999", "Вид": "Стажировка", "Код ресурса": "SS1", "Решение": "закрепить"},
                    {"Код педагога": "T1", "Вид": "Стажировка", "Код ресурса": "NOPE", "Решение": "исключить"},
                    {"Код педагога": "T1", "Вид": "Экскурсия", "Код ресурса": "SS1", "Решение": "исключить"},
                    {"Код педагога": second.teacher_id, "Вид": {"mentor": "Наставничество", "internship": "Стажировка",
                                                                 "program": "Программа ДПП"}[second.kind],
                     "Код ресурса": second.resource_id, "Решение": "закрепить"}])
    sheet = openpyxl.load_workbook(marked)["Маршруты"]
    n = sheet.max_row
    # the last row pins what the sheet forbids elsewhere: mark that row «исключить» first
    marked = _mark(marked, marked, {(second.teacher_id, second.resource_id): "исключить"})
    sheet = openpyxl.load_workbook(marked)["Маршруты"]
    header = _header(sheet)
    sheet.cell(n, header.index("Решение") + 1).value = "закрепить"
    sheet.parent.save(marked)
    with pytest.raises(InputError) as error:
        read_decisions(marked, region)
    found = {(p.row, p.column, p.code) for p in error.value.problems}
    first_row = 2 + next(i for i, a in enumerate(_routes_order(folder)) if a == (first.teacher_id, first.resource_id))
    assert (first_row, "Решение", "bad_value") in found
    assert (n - 3, "Код педагога", "unknown_id") in found
    assert (n - 2, "Код ресурса", "unknown_id") in found
    assert (n - 1, "Вид", "bad_value") in found
    assert (n, "Решение", "conflict") in found
    assert len(found) == 5
    app = typer.Typer()
    register_whatif(app)
    result = CliRunner().invoke(app, ["replan", str(folder), "--bundle", str(bundle), "--from-xlsx", str(marked),
                                      "--out", str(tmp_path / "new")])
    assert result.exit_code == 2 and "строка" in result.output and not (tmp_path / "new").exists()
    # Not a workbook at all, or a workbook without the sheet: one clear problem each.
    (tmp_path / "junk.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(InputError) as error:
        read_decisions(tmp_path / "junk.xlsx", region)
    assert error.value.problems[0].code == "not_xlsx"
    empty = openpyxl.Workbook()
    empty.save(tmp_path / "empty.xlsx")
    with pytest.raises(InputError) as error:
        read_decisions(tmp_path / "empty.xlsx", region)
    assert error.value.problems[0].code == "missing_sheet"


def _routes_order(folder: Path) -> list[tuple[str, str]]:
    sheet = openpyxl.load_workbook(folder / "plan.xlsx")["Маршруты"]
    header = _header(sheet)
    return [(r[header.index("Код педагога")], r[header.index("Код ресурса")])
            for r in sheet.iter_rows(min_row=2, values_only=True)]


def test_tools_for_the_pdf_checks_are_installed():
    """LibreOffice and poppler come from Debian packages that .ci/run installs (README's test command)."""
    assert shutil.which("soffice") and shutil.which("pdftotext") and shutil.which("pdftoppm")
