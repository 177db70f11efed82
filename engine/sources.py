"""Raw tables from a bundle source: a folder of CSV files, a .zip of it, or an .xlsx workbook.

Every cell comes back as a string (validation and typing happen in `engine.bundle`), and nothing
here raises for a user's mistake: problems go to the report. Archives are read defensively
(no paths outside the archive, bounded decompressed size) because the API accepts uploads.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from .problems import ProblemReport

REGION_FILE = "region.json"

# An upload that expands beyond these is refused: a real region is a few tens of megabytes.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
MAX_ARCHIVE_MEMBERS = 1000


@dataclass
class RawBundle:
    """File name (as in SPEC: `teachers.csv`) -> table of strings; plus region.json's object."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    region: dict | None = None
    source: str = ""


def read_source(path: str | Path, report: ProblemReport) -> RawBundle:
    path = Path(path)
    if not path.exists():
        report.add(str(path), "набор данных не найден (нужна папка, .zip или .xlsx)", code="not_found")
        return RawBundle(source=str(path))
    if path.is_dir():
        return _read_folder(path, report)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _read_zip(path.read_bytes(), path.name, report)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path.read_bytes(), path.name, report)
    report.add(path.name, "неизвестный формат: нужна папка с CSV, архив .zip или книга .xlsx",
               code="unsupported_format")
    return RawBundle(source=str(path))


def read_upload(content: bytes, filename: str, report: ProblemReport) -> RawBundle:
    """The same as read_source, for bytes received over HTTP."""
    name = filename or "upload"
    if content[:4] == b"PK\x03\x04":
        # Both .zip and .xlsx are zip containers: an xlsx has [Content_Types].xml inside.
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                is_workbook = "[Content_Types].xml" in archive.namelist()
        except zipfile.BadZipFile:
            report.add(name, "повреждённый архив", code="bad_archive")
            return RawBundle(source=name)
        if is_workbook:
            return _read_xlsx(content, name, report)
        return _read_zip(content, name, report)
    report.add(name, "файл не является архивом .zip или книгой .xlsx", code="unsupported_format")
    return RawBundle(source=name)


def _read_folder(folder: Path, report: ProblemReport) -> RawBundle:
    bundle = RawBundle(source=str(folder))
    for file in sorted(folder.iterdir()):
        if file.is_file():
            _take_file(bundle, file.name, file.read_bytes(), report)
    return bundle


def _read_zip(content: bytes, name: str, report: ProblemReport) -> RawBundle:
    bundle = RawBundle(source=name)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        report.add(name, "повреждённый архив .zip", code="bad_archive")
        return bundle
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_ARCHIVE_MEMBERS:
            report.add(name, f"в архиве слишком много файлов ({len(members)})", code="archive_too_large")
            return bundle
        total = sum(m.file_size for m in members)
        packed = max(1, sum(m.compress_size for m in members))
        if total > MAX_UNPACKED_BYTES or total / packed > MAX_COMPRESSION_RATIO and total > 10_000_000:
            report.add(name, "архив распаковывается в слишком большой объём (похоже на zip-бомбу)",
                       code="archive_too_large", value=f"{total} bytes")
            return bundle
        for member in members:
            member_path = PurePosixPath(member.filename.replace("\\", "/"))
            if member_path.is_absolute() or ".." in member_path.parts:
                report.add(name, "путь в архиве выходит за пределы архива", code="unsafe_path",
                           value=member.filename)
                continue
            if member_path.name.startswith(".") or "__MACOSX" in member_path.parts:
                continue
            # A zip of the folder holds either the files or one folder with them.
            if len(member_path.parts) > 2:
                continue
            try:
                data = _read_member_bounded(archive, member)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                report.add(f"{name}/{member.filename}", f"файл в архиве не читается: {exc}",
                           code="bad_archive")
                continue
            _take_file(bundle, member_path.name, data, report)
    return bundle


def _read_member_bounded(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """Reads at most the declared size (+1 byte to notice a lying header)."""
    with archive.open(member) as stream:
        data = stream.read(member.file_size + 1)
    if len(data) > member.file_size:
        raise ValueError("размер файла не совпадает с заголовком архива")
    return data


def _take_file(bundle: RawBundle, name: str, data: bytes, report: ProblemReport) -> None:
    if name == REGION_FILE:
        bundle.region = _parse_region_json(data, report)
    elif name.lower().endswith(".csv") and not name.startswith("_"):
        table = _parse_csv(data, name, report)
        if table is not None:
            bundle.tables[name] = table


def _decode(data: bytes, name: str, report: ProblemReport) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = ""
        try:
            data.decode("cp1251")
            hint = " (похоже на Windows-1251: сохраните файл в UTF-8)"
        except UnicodeDecodeError:
            pass
        report.add(name, f"файл не в кодировке UTF-8{hint}", code="encoding", row=line,
                   value=repr(data[exc.start: exc.start + 8]))
        return None


def _parse_csv(data: bytes, name: str, report: ProblemReport) -> pd.DataFrame | None:
    if not data.strip():
        report.add(name, "пустой файл: нет даже строки заголовка", code="empty_file")
        return None
    if b"\x00" in data:
        report.add(name, "файл содержит нулевые байты: это не текстовый CSV", code="binary_file")
        return None
    text = _decode(data, name, report)
    if text is None:
        return None
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                            skipinitialspace=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        report.add(name, f"CSV не разбирается: {_first_line(exc)}", code="bad_csv")
        return None
    return _normalise_table(table)


def _normalise_table(table: pd.DataFrame) -> pd.DataFrame:
    table.columns = [str(c).strip() for c in table.columns]
    for column in table.columns:
        table[column] = table[column].astype(str).str.strip()
    return table.reset_index(drop=True)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _parse_region_json(data: bytes, report: ProblemReport) -> dict | None:
    text = _decode(data, REGION_FILE, report)
    if text is None:
        return None
    if not text.strip():
        report.add(REGION_FILE, "пустой файл", code="empty_file")
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        report.add(REGION_FILE, f"некорректный JSON: {exc.msg}", code="bad_json", row=exc.lineno)
        return None
    if not isinstance(value, dict):
        report.add(REGION_FILE, "ожидается объект JSON с полями name, period_start, period_end",
                   code="bad_json")
        return None
    return value


def _read_xlsx(content: bytes, name: str, report: ProblemReport) -> RawBundle:
    import openpyxl

    bundle = RawBundle(source=name)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        report.add(name, f"книга Excel не открывается: {_first_line(exc)}", code="bad_workbook")
        return bundle
    try:
        for sheet in workbook.worksheets:
            rows = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            while rows and not any(rows[-1]):
                rows.pop()
            title = sheet.title.strip()
            if title == "region":
                bundle.region = _region_from_sheet(rows, report)
                continue
            if title.startswith("_"):
                continue
            file = f"{title}.csv"
            if not rows or not any(rows[0]):
                report.add(file, "пустой лист: нет строки заголовка", code="empty_file")
                continue
            header = [h.strip() for h in rows[0]]
            while header and not header[-1]:
                header.pop()
            body = [(r + [""] * len(header))[: len(header)] for r in rows[1:] if any(r)]
            bundle.tables[file] = _normalise_table(pd.DataFrame(body, columns=header, dtype=str))
    finally:
        workbook.close()
    return bundle


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _region_from_sheet(rows: list[list[str]], report: ProblemReport) -> dict | None:
    if not rows:
        report.add("region", "пустой лист region", code="empty_file")
        return None
    header = [h.strip().lower() for h in rows[0]]
    if header[:2] != ["key", "value"]:
        report.add("region", "лист region должен иметь столбцы key, value", code="missing_column")
        return None
    return {r[0].strip(): r[1].strip() for r in rows[1:] if len(r) >= 2 and r[0].strip()}
