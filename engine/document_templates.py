"""The default templates of the route documents: engine/templates/route.docx and school.docx.

They are ordinary Word documents with docxtpl fields (Jinja2: `{{ teacher.school }}`, table rows
repeated with `{%tr for s in steps %}`), built here with python-docx so that they can be rebuilt
after a change:

    python -m marshrut.engine.document_templates      # rewrites engine/templates/*.docx

A region replaces them with its own (`marshrut documents ... --template FILE --school-template
FILE`): open one in Word or LibreOffice, change the layout, keep the fields it needs. The fields
are listed in docs/documents.md.
"""

from __future__ import annotations

from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

TEMPLATES = Path(__file__).parent / "templates"
FONT = "Times New Roman"  # rendered by LibreOffice with the metric-compatible Liberation Serif


def _document(landscape: bool = False):
    doc = Document()
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    section.left_margin = section.right_margin = Cm(1.5)
    section.top_margin = section.bottom_margin = Cm(1.5)
    normal = doc.styles["Normal"]
    normal.font.size = Pt(11)
    normal.paragraph_format.space_after = Pt(3)
    for name in ("Normal", "Heading 1", "Heading 2", "Title", "Table Grid"):
        _one_font(doc.styles[name])
    for name in ("Heading 1", "Heading 2"):
        doc.styles[name].font.color.rgb = None
    doc.styles["Heading 1"].font.size = Pt(14)
    doc.styles["Heading 2"].font.size = Pt(12)
    return doc


def _one_font(style) -> None:
    """The style's text in FONT for every script, with no theme font overriding it."""
    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    for attribute in list(fonts.attrib):
        if attribute.endswith("Theme"):
            del fonts.attrib[attribute]
    for attribute in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attribute), FONT)


def _centered(doc, text: str, bold: bool = False, size: int | None = None):
    paragraph = doc.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = paragraph.add_run(text)
    run.bold = bold
    if size:
        run.font.size = Pt(size)
    return paragraph


def _table(doc, headers: list[str], fields: list[str], widths_cm: list[float], loop: str, size: int = 9):
    """A table: a bold header row, then one row per item of `loop` (docxtpl's {%tr for %})."""
    table = doc.add_table(rows=4, cols=len(headers))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _repeat_header(table.rows[0])
    for i, header in enumerate(headers):
        run = table.rows[0].cells[i].paragraphs[0].add_run(header)
        run.bold, run.font.size = True, Pt(size)
    table.rows[1].cells[0].paragraphs[0].add_run(f"{{%tr for {loop} %}}")
    for i, field in enumerate(fields):
        run = table.rows[2].cells[i].paragraphs[0].add_run(field)
        run.font.size = Pt(size)
    table.rows[3].cells[0].paragraphs[0].add_run("{%tr endfor %}")
    _widths(table, widths_cm)
    return table


def _widths(table, widths_cm: list[float]) -> None:
    """Fixed column widths that Word and LibreOffice both honour (the grid and every cell)."""
    table.autofit = False
    grid = table._tbl.tblGrid
    for column, width in zip(grid.findall(qn("w:gridCol")), widths_cm):
        column.set(qn("w:w"), str(int(Cm(width).twips)))
    for row in table.rows:
        for cell, width in zip(row.cells, widths_cm):
            cell.width = Cm(width)


def _repeat_header(row) -> None:
    properties = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    properties.append(header)


def _signatures(doc, lines: list[str]) -> None:
    doc.add_paragraph()
    for line in lines:
        paragraph = doc.add_paragraph(line)
        paragraph.paragraph_format.space_after = Pt(10)


def build_route_template(path: Path) -> Path:
    doc = _document()
    _centered(doc, "ИНДИВИДУАЛЬНЫЙ ОБРАЗОВАТЕЛЬНЫЙ МАРШРУТ ПЕДАГОГА", bold=True, size=14)
    _centered(doc, "непрерывного развития профессионального мастерства")
    _centered(doc, "{{ region }}, период {{ period_start }} — {{ period_end }}")
    doc.add_heading("1. Педагог", level=2)
    _table(doc, ["Сведения", "Значение"], ["{{ row.label }}", "{{ row.value }}"], [6.0, 12.0], "row in teacher_rows",
           size=10)
    doc.add_heading("2. Профессиональные дефициты по результатам диагностики", level=2)
    doc.add_paragraph("{%p if deficits %}")
    _table(doc, ["Компетенция", "Балл", "Порог", "Потребность", "Закрыто маршрутом"],
           ["{{ d.competency }}", "{{ d.score }}", "{{ d.threshold }}", "{{ d.need }}", "{{ d.covered }}"],
           [8.0, 2.0, 2.0, 3.0, 3.0], "d in deficits", size=10)
    doc.add_paragraph("{%p else %}")
    doc.add_paragraph("Дефицитов ниже порога {{ threshold }} баллов диагностика не выявила.")
    doc.add_paragraph("{%p endif %}")
    doc.add_heading("3. Мероприятия маршрута", level=2)
    _table(doc, ["№", "Вид", "Мероприятие (что закрывает)", "Организатор / принимающая школа", "Сроки", "Часы",
                 "Формат", "Кто оплачивает"],
           ["{{ s.step }}", "{{ s.kind }}", "{{ s.name }}", "{{ s.host }}", "{{ s.dates }}", "{{ s.hours }}",
            "{{ s.format }}", "{{ s.fund }}"],
           [0.6, 2.8, 3.7, 2.8, 2.3, 1.3, 2.3, 2.2], "s in steps")
    doc.add_paragraph("Итого: {{ hours_total }} ч; стоимость {{ cost_total }} "
                      "(из сертификата {{ voucher_total }}, из бюджета {{ budget_total }}).")
    doc.add_heading("4. Ожидаемый результат", level=2)
    doc.add_paragraph("Потребность педагога в развитии (сумма дефицитов с учётом приоритета): {{ need_total }}. "
                      "Маршрут закрывает {{ need_covered }} ({{ need_share }}); остаётся {{ need_after }}.")
    _signatures(doc, ["Педагог ______________ / {{ signature_name }} /",
                      "Руководитель образовательной организации ______________ / ______________________ /",
                      "Методист (куратор маршрута) ______________ / ______________________ /",
                      "Дата: «____» ________________ 20___ г."])
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def build_school_template(path: Path) -> Path:
    doc = _document(landscape=True)
    _centered(doc, "СВОДКА ИНДИВИДУАЛЬНЫХ ОБРАЗОВАТЕЛЬНЫХ МАРШРУТОВ ПЕДАГОГОВ", bold=True, size=14)
    _centered(doc, "{{ school.name }} ({{ school.id }}), {{ school.municipality }}")
    _centered(doc, "{{ region }}, период {{ period_start }} — {{ period_end }}")
    doc.add_heading("1. Итоги по школе", level=2)
    _table(doc, ["Показатель", "Значение"], ["{{ row.label }}", "{{ row.value }}"], [12.0, 12.0],
           "row in figures", size=10)
    doc.add_heading("2. Педагоги и их маршруты", level=2)
    _table(doc, ["Код педагога", "ФИО", "Должность", "Мероприятий", "Часов", "Стоимость", "Потребность",
                 "Закрыто"],
           ["{{ t.teacher_id }}", "{{ t.full_name }}", "{{ t.position }}", "{{ t.steps }}", "{{ t.hours }}",
            "{{ t.cost }}", "{{ t.need_total }}", "{{ t.need_covered }}"],
           [2.6, 5.4, 4.2, 2.4, 2.0, 2.8, 2.6, 2.6], "t in teachers")
    doc.add_heading("3. Мероприятия", level=2)
    _table(doc, ["Педагог", "№", "Вид", "Мероприятие", "Организатор / принимающая школа", "Сроки", "Часы",
                 "Стоимость", "Кто оплачивает"],
           ["{{ s.teacher }}", "{{ s.step }}", "{{ s.kind }}", "{{ s.name }}", "{{ s.host }}", "{{ s.dates }}",
            "{{ s.hours }}", "{{ s.cost }}", "{{ s.fund }}"],
           [2.6, 0.8, 2.4, 6.0, 4.4, 2.6, 1.2, 2.2, 2.8], "s in steps")
    doc.add_heading("4. Расходы", level=2)
    doc.add_paragraph("Из бюджета муниципалитета (стажировки, стипендии наставников): {{ budget_total }}; "
                      "из сертификатов педагогов (программы ДПП): {{ voucher_total }}; всего {{ cost_total }}.")
    _signatures(doc, ["Руководитель образовательной организации ______________ / ______________________ /",
                      "Дата: «____» ________________ 20___ г."])
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def build_default_templates(folder: Path = TEMPLATES) -> tuple[Path, Path]:
    return build_route_template(folder / "route.docx"), build_school_template(folder / "school.docx")


if __name__ == "__main__":  # pragma: no cover
    for built in build_default_templates():
        print(built)
