"""Route documents (SPEC §6 v2): one .docx per teacher with a route, grouped per school with the
school's summary; PDFs beside them through LibreOffice where asked.

    OUT/<school_id> <school name>/ИОМ_<teacher_id>.docx     the teacher's individual route
    OUT/<school_id> <school name>/Сводка_<school_id>.docx    the school's summary

The layout is a template a region can replace (engine/document_templates.py builds the default
ones; docs/documents.md lists the fields). A template is read and compiled once
(`CompiledTemplate`): docxtpl cleans its XML (fields split across runs by Word, `{%tr %}` rows),
Jinja2 compiles it, and each document is one render of that compiled template written into a
copy of the template's other parts. A whole region of 11,000 routes takes seconds, not the
minutes a fresh docxtpl render per document would.
"""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import markupsafe
import numpy as np

from .plan_view import PlanView, date_ru
from .problems import InputError, Problem

TEMPLATES = Path(__file__).parent / "templates"
ROUTE_TEMPLATE = TEMPLATES / "route.docx"
SCHOOL_TEMPLATE = TEMPLATES / "school.docx"
VOUCHER_SHORT = "Сертификат педагога"  # fits a table cell; the workbook says it in full
_TEMPLATED_PART = re.compile(r"word/(document|header\d*|footer\d*)\.xml")
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f«»№]+')


class CompiledTemplate:
    """A .docx template with docxtpl fields, compiled once and rendered many times."""

    def __init__(self, path: str | Path) -> None:
        from docx.opc.exceptions import PackageNotFoundError
        from docxtpl import DocxTemplate

        self.path = Path(path)
        try:
            cleaner = DocxTemplate(str(self.path))
            with zipfile.ZipFile(self.path) as archive:
                self.parts = [(info, archive.read(info)) for info in archive.infolist()]
        except (OSError, zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as error:
            raise self._error(f"не удаётся прочитать шаблон .docx: {str(error)[:300]}", "bad_template") from None
        self._static_cache: dict[str, _ZipEntry] = {}
        environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
        self.compiled: dict[str, jinja2.Template] = {}
        for info, content in self.parts:
            if not _TEMPLATED_PART.fullmatch(info.filename):
                continue
            xml = content.decode("utf-8")
            if "{" not in xml:
                continue
            try:
                self.compiled[info.filename] = environment.from_string(cleaner.patch_xml(xml))
            except jinja2.TemplateSyntaxError as error:
                raise self._error(f"ошибка в поле шаблона (строка XML {error.lineno}): {error.message}",
                                  "bad_template") from None

    def _error(self, message: str, code: str) -> InputError:
        return InputError([Problem(self.path.name, message, code)], title="Ошибка в шаблоне документа")

    def render(self, context: dict) -> bytes:
        entries = []
        for info, content in self.parts:
            template = self.compiled.get(info.filename)
            if template is None:
                entries.append(self._static(info.filename, content))
                continue
            try:
                xml = template.render(context)
            except jinja2.UndefinedError as error:
                raise self._error(f"в шаблоне неизвестное поле: {error.message}", "unknown_field") from None
            except (jinja2.TemplateError, TypeError, ValueError) as error:
                raise self._error(f"ошибка в поле шаблона: {str(error)[:300]}", "bad_template") from None
            # docxtpl's escapes for literal braces (line breaks in values are made by `lines`)
            xml = xml.replace("{_{", "{{").replace("}_}", "}}").replace("{_%", "{%").replace("%_}", "%}")
            entries.append(_ZipEntry.deflated(info.filename, xml.encode("utf-8")))
        return _zip(entries)

    def _static(self, name: str, content: bytes) -> "_ZipEntry":
        """The template's other parts are the same in every document: compressed once."""
        if name not in self._static_cache:
            self._static_cache[name] = _ZipEntry.deflated(name, content)
        return self._static_cache[name]


@dataclass(frozen=True)
class _ZipEntry:
    name: bytes
    crc: int
    size: int
    data: bytes  # raw deflate

    @classmethod
    def deflated(cls, name: str, content: bytes) -> "_ZipEntry":
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        return cls(name.encode("utf-8"), zlib.crc32(content), len(content), packer.compress(content) + packer.flush())


_DOS_DATE = (1 << 5) | 1  # 1980-01-01, 00:00: documents of one plan are byte-identical for the same input


def _zip(entries: list[_ZipEntry]) -> bytes:
    """A .zip of deflated entries (the parts of a .docx), some of them compressed once for all documents:
    zipfile cannot take data compressed beforehand, and compressing a template's 17 parts per document
    was most of the time."""
    out, central = bytearray(), bytearray()
    for e in entries:
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x0800, 8, 0, _DOS_DATE, e.crc, len(e.data), e.size,
                           len(e.name), 0) + e.name + e.data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x0800, 8, 0, _DOS_DATE, e.crc, len(e.data),
                               e.size, len(e.name), 0, 0, 0, 0, 0, offset) + e.name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)


_BREAK = markupsafe.Markup('</w:t><w:br/><w:t xml:space="preserve">')


def lines(*parts: str) -> markupsafe.Markup:
    """Text lines as one field's value: each line escaped, a line break (w:br) between them, so a
    field stays a field however many lines it holds (docxtpl's regex pass over the whole document
    after each render did the same, and cost most of a large school summary's time)."""
    return _BREAK.join(markupsafe.escape(p) for p in parts if p)


# ---- numbers and texts as a Russian document writes them ---------------------------------------------

def _grouped(value: float, digits: int) -> str:
    text = f"{value:,.{digits}f}".replace(",", "\u00a0").replace(".", ",")
    return text


def rub(value: float) -> str:
    return _grouped(round(float(value)), 0) + "\u00a0₽"


def number(value: float, digits: int = 2) -> str:
    return _grouped(float(value), digits)


def hours(value: float) -> str:
    return _grouped(float(value), 0) if float(value).is_integer() else _grouped(float(value), 1)


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}\u00a0%".replace(".", ",") if whole else "—"


def safe_name(text: str, limit: int = 80) -> str:
    """A file or folder name that every system accepts."""
    cleaned = _UNSAFE.sub(" ", text)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    return cleaned[:limit].strip(" .") or "_"


# ---- contexts --------------------------------------------------------------------------------------

@dataclass
class Documents:
    """What write_documents wrote."""

    folder: Path
    teachers: int
    schools: int
    files: list[Path]
    pdfs: list[Path]
    seconds: float
    pdf_seconds: float = 0.0


class DocumentSet:
    """The route documents of a plan: contexts per teacher and school, rendered from two templates."""

    def __init__(self, view: PlanView, route_template: str | Path | None = None,
                 school_template: str | Path | None = None) -> None:
        self.view = view
        self.route = CompiledTemplate(route_template or ROUTE_TEMPLATE)
        self.school = CompiledTemplate(school_template or SCHOOL_TEMPLATE)
        region = view.region
        steps = view.steps
        self._records = steps.assign(
            dates=[f"{date_ru(s)} — {date_ru(e)}" if s != e else date_ru(s) for s, e in zip(steps["start"],
                                                                                             steps["end"])],
        ).to_dict(orient="records")
        self._by_teacher: dict[int, list[int]] = {}
        for i, t in enumerate(view.teacher.tolist()):
            self._by_teacher.setdefault(t, []).append(i)
        self._voucher = view.activities.voucher_rub[view.activity]
        self._budget = view.activities.budget_rub[view.activity]
        self.common = {"region": region.name, "period_start": date_ru(region.period_start),
                       "period_end": date_ru(region.period_end), "threshold": number(view.params.deficit_threshold, 0)}

    # which teachers and schools have documents
    def teachers(self) -> list[int]:
        return sorted(self._by_teacher, key=lambda t: self.view.region.teachers.ids[t])

    def schools(self) -> list[int]:
        school = self.view.region.teachers.school
        return sorted({int(school[t]) for t in self._by_teacher}, key=lambda s: self.view.region.schools.ids[s])

    def teachers_of(self, school: int) -> list[int]:
        if not hasattr(self, "_by_school"):
            of = self.view.region.teachers.school
            self._by_school: dict[int, list[int]] = {}
            for t in self.teachers():
                self._by_school.setdefault(int(of[t]), []).append(t)
        return self._by_school.get(school, [])

    def folder_name(self, school: int) -> str:
        schools = self.view.region.schools
        return safe_name(f"{schools.ids[school]} {schools.names[school]}")

    @staticmethod
    def teacher_file(teacher_id: str) -> str:
        return f"ИОМ_{safe_name(teacher_id)}.docx"

    def school_file(self, school: int) -> str:
        return f"Сводка_{safe_name(self.view.region.schools.ids[school])}.docx"

    def _step_rows(self, t: int) -> list[dict]:
        rows = []
        for i in self._by_teacher.get(t, []):
            r = self._records[i]
            name = lines(r["name"], f"(закрывает: {r['addresses']})" if r["addresses"] else "",
                         f"реестровый № {r['registry_id']}" if r["registry_id"] else "")
            host = r["host"] + (f", {r['place']}" if r["place"] and r["place"] not in r["host"] else "")
            rows.append({"step": r["step"], "kind": r["kind_ru"], "name": name, "host": host, "dates": r["dates"],
                         "start": date_ru(r["start"]), "end": date_ru(r["end"]), "hours": hours(r["hours"]),
                         "format": r["format"], "place": r["place"], "cost": rub(r["cost_rub"]),
                         "fund": VOUCHER_SHORT if r["funded_by"] == "voucher" else r["fund"],
                         "resource_id": r["resource_id"], "addresses": r["addresses"]})
        return rows

    def teacher_context(self, t: int) -> dict:
        view = self.view
        who = view.teacher_row(t)
        rows = [("Код педагога", who["teacher_id"])]
        rows += [(label, who[key]) for label, key in (("ФИО", "full_name"), ("Должность", "position"),
                                                       ("Предмет", "subject")) if who[key]]
        rows += [("Роль", who["role"]), ("Образовательная организация", f"{who['school']} ({who['school_id']})"),
                 ("Муниципалитет", who["municipality"])]
        if who["low_results"]:
            rows.append(("Приоритет", "школа с низкими образовательными результатами"))
        mine = self._by_teacher.get(t, [])
        need_total, need_covered = float(view.need_total[t]), float(view.need_covered[t])
        deficits = [{"competency": d["competency"], "score": number(d["score"], 0) if float(d["score"]).is_integer()
                     else number(d["score"], 1), "threshold": number(d["threshold"], 0), "need": number(d["need"], 3),
                     "covered": share(d["need_covered"], d["need"])} for d in view.deficits(t)]
        return {
            **self.common,
            "teacher": who, "teacher_rows": [{"label": k, "value": v} for k, v in rows],
            "deficits": deficits, "steps": self._step_rows(t),
            "hours_total": hours(sum(self._records[i]["hours"] for i in mine)),
            "cost_total": rub(sum(self._records[i]["cost_rub"] for i in mine)),
            "voucher_total": rub(self._voucher[mine].sum() if mine else 0),
            "budget_total": rub(self._budget[mine].sum() if mine else 0),
            "need_total": number(need_total, 3), "need_covered": number(need_covered, 3),
            "need_after": number(need_total - need_covered, 3), "need_share": share(need_covered, need_total),
            "signature_name": who["full_name"] or "______________________",
        }

    def school_context(self, school: int) -> dict:
        view = self.view
        region = view.region
        municipality = int(region.schools.municipality[school])
        in_school = np.flatnonzero(region.teachers.school == school)
        need_t = view.need_total[in_school]
        teachers = []
        steps = []
        all_steps: list[int] = []
        for t in self.teachers_of(school):
            mine = self._by_teacher[t]
            all_steps += mine
            who = view.teacher_row(t)
            teachers.append({"teacher_id": who["teacher_id"], "full_name": who["full_name"],
                             "position": who["position"] or who["role"], "steps": len(mine),
                             "hours": hours(sum(self._records[i]["hours"] for i in mine)),
                             "cost": rub(sum(self._records[i]["cost_rub"] for i in mine)),
                             "need_total": number(view.need_total[t], 3),
                             "need_covered": number(view.need_covered[t], 3)})
            for row in self._step_rows(t):
                steps.append({**row, "teacher": who["full_name"] or who["teacher_id"]})
        voucher = float(self._voucher[all_steps].sum()) if all_steps else 0.0
        budget = float(self._budget[all_steps].sum()) if all_steps else 0.0
        covered = float(view.need_covered[in_school].sum())
        figures = [("Педагогов в школе", str(len(in_school))),
                   ("Педагогов с дефицитами", str(int((need_t > 0).sum()))),
                   ("Педагогов с маршрутом", str(len(teachers))),
                   ("Мероприятий", str(len(all_steps))),
                   ("Потребность педагогов школы", number(float(need_t.sum()), 3)),
                   ("Закрыто маршрутами", f"{number(covered, 3)} ({share(covered, float(need_t.sum()))})")]
        return {
            **self.common,
            "school": {"id": region.schools.ids[school], "name": region.schools.names[school],
                       "municipality": region.municipalities.names[municipality],
                       "municipality_id": region.municipalities.ids[municipality]},
            "figures": [{"label": k, "value": v} for k, v in figures], "teachers": teachers, "steps": steps,
            "voucher_total": rub(voucher), "budget_total": rub(budget), "cost_total": rub(voucher + budget),
        }

    def teacher_document(self, t: int) -> bytes:
        return self.route.render(self.teacher_context(t))

    def school_summary(self, school: int) -> bytes:
        return self.school.render(self.school_context(school))

    def school_package(self, school: int) -> bytes:
        """A .zip of the school's folder: its summary and every route of its teachers."""
        folder = self.folder_name(school)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # .docx are compressed already
            archive.writestr(f"{folder}/{self.school_file(school)}", self.school_summary(school))
            for t in self.teachers_of(school):
                archive.writestr(f"{folder}/{self.teacher_file(self.view.region.teachers.ids[t])}",
                                 self.teacher_document(t))
        return out.getvalue()


# PDFs per LibreOffice call when progress is reported: a chunk's conversion is what a cancelled job
# leaves running (its soffice is not the job's process), and a call's start-up costs a few seconds.
PDF_CHUNK = 200


def write_documents(view: PlanView, out_dir: str | Path, *, pdf: bool = False,
                    route_template: str | Path | None = None, school_template: str | Path | None = None,
                    on_progress: Callable[[str, int, int], None] | None = None) -> Documents:
    """Every teacher's route document and every school's summary into OUT/<school>/; PDFs with `pdf`.
    `on_progress(phase, done, total)` is told of each document written ("documents") and of each
    chunk of PDFs made ("pdf")."""
    started = time.perf_counter()
    if pdf:
        from .office import require_soffice

        require_soffice()  # before writing anything: say now that PDFs cannot be made
    documents = DocumentSet(view, route_template, school_template)
    out = Path(out_dir)
    files = []
    schools = documents.schools()
    if schools:  # a template's unknown field is reported before any folder is made
        documents.school_summary(schools[0])
        documents.teacher_document(documents.teachers_of(schools[0])[0])
    total = len(schools) + len(documents.teachers())
    if on_progress is not None:
        on_progress("documents", 0, total)
    for school in schools:
        folder = out / documents.folder_name(school)
        folder.mkdir(parents=True, exist_ok=True)
        to_write = [(folder / documents.school_file(school), lambda: documents.school_summary(school))]
        to_write += [(folder / documents.teacher_file(view.region.teachers.ids[t]),
                     lambda t=t: documents.teacher_document(t)) for t in documents.teachers_of(school)]
        for path, render in to_write:
            path.write_bytes(render())
            files.append(path)
            if on_progress is not None:
                on_progress("documents", len(files), total)
    seconds = time.perf_counter() - started
    pdfs: list[Path] = []
    pdf_seconds = 0.0
    if pdf:
        from .office import convert_to_pdf

        started = time.perf_counter()
        chunk = len(files) if on_progress is None else PDF_CHUNK
        for first in range(0, len(files), max(1, chunk)):
            if on_progress is not None:
                on_progress("pdf", len(pdfs), len(files))
            pdfs += convert_to_pdf(files[first:first + chunk])
        if on_progress is not None:
            on_progress("pdf", len(pdfs), len(files))
        pdf_seconds = time.perf_counter() - started
    return Documents(out, len(documents.teachers()), len(schools), files, pdfs, seconds, pdf_seconds)
