"""Import of a registry export into a region bundle folder (docs/registry.md, "Import").

    loaded = read_export("export.json")                     # or a CSV folder / .zip, or an http(s) URL
    mapping = read_mapping("competency_map.csv", bundle)    # registry code -> bundle competency
    report = import_export("bundles/krasnoyarsk", loaded, mapping)

What the registry owns in a bundle: the programs with a `registry_id` (added, updated, and removed
when the registry no longer lists them), their sessions (`program_sessions.csv` gains a
`registry_session_id` column) and competencies, and the teachers' vouchers (`voucher_rub` becomes
the balance; `teachers.csv` gains a `certificate_id` column). Programs without a `registry_id`
(the region's own), internships, mentors and everything else are left alone.

Re-importing the same export writes nothing. A newer export rewrites only the files whose content
changes, and the report lists what was added, removed and changed. The merged bundle is validated
(engine.load_bundle) before any file of the bundle is replaced, so a failed import leaves the
bundle as it was. A record of the last import is kept in `_registry.json` (ignored by the loader);
an export older than it is refused unless `allow_older`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from ..bundle import load_bundle
from ..problems import BundleError, InputError, Problem, ProblemReport
from ..sources import REGION_FILE, RawBundle
from ..sources import _take_file as take_file
from .models import Export, Program, Session, Voucher

STATE_FILE = "_registry.json"
EXPORT_CSV = {
    "programs.csv": ["registry_id", "provider", "title", "hours", "form", "price_rub", "competencies"],
    "sessions.csv": ["session_id", "program_id", "start", "end", "seats", "municipality_code",
                     "municipality_name", "address"],
    "vouchers.csv": ["certificate_id", "teacher_id", "nominal_rub", "balance_rub", "status"],
}
REQUIRED_CSV = {
    "programs.csv": ["registry_id", "title", "hours", "form", "price_rub"],
    "sessions.csv": ["session_id", "program_id", "start", "end", "seats"],
    "vouchers.csv": ["certificate_id", "teacher_id", "nominal_rub", "balance_rub"],
}
MAX_EXPORT_BYTES = 512 * 1024 * 1024
EXAMPLES = 10  # ids shown per kind of change or note


class ExportError(InputError):
    """An export (or a mapping file) that cannot be imported: every problem, listed."""

    def __init__(self, problems: list[Problem], total: int | None = None,
                 title: str = "Ошибки в выгрузке реестра") -> None:
        super().__init__(problems, total, title)

    @classmethod
    def from_report(cls, report: ProblemReport, title: str = "Ошибки в выгрузке реестра") -> ExportError:
        return cls(report.problems, report.total, title)


@dataclass
class LoadedExport:
    export: Export
    sha256: str
    source: str


@dataclass
class Mapping:
    """Registry competency code -> [(bundle competency id, weight)]; an empty list: ignored on purpose."""

    competencies: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    municipalities: dict[str, str] = field(default_factory=dict)


class FileDiff(BaseModel):
    added: int = 0
    removed: int = 0
    changed: int = 0
    examples: dict[str, list] = Field(default_factory=dict, description="a few ids per kind of change")


class ImportReport(BaseModel):
    source: str
    registry: str = ""
    exported_at: str | None = None
    export_sha256: str
    bundle: str
    changed: bool = Field(description="whether any bundle file was (or, in a dry run, would be) rewritten")
    dry_run: bool = False
    files_written: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    diff: dict[str, FileDiff] = Field(default_factory=dict)
    unmapped_codes: dict[str, int] = Field(default_factory=dict,
                                           description="registry competency codes without a mapping -> programs")
    notes: list[dict] = Field(default_factory=list, description="what was skipped or adjusted, and why")
    notes_total: int = 0
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------
# reading an export
# ------------------------------------------------------------------------------------------------

def read_export(source: str | Path, *, api_key: str | None = None, timeout: float = 120) -> LoadedExport:
    """An export from a JSON file, a folder or .zip of CSV files, or a URL answering either."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        content, kind = _fetch(text, api_key, timeout)
        name = text
    else:
        path = Path(source)
        if not path.exists():
            raise ExportError([Problem(text, "выгрузка реестра не найдена", "not_found")])
        if path.is_dir():
            files = {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
            return LoadedExport(_from_csv(files, path.name), _digest_files(files), str(path))
        if path.stat().st_size > MAX_EXPORT_BYTES:
            raise ExportError([Problem(path.name, "выгрузка слишком велика", "too_large")])
        content, name = path.read_bytes(), path.name
        kind = "zip" if content[:4] == b"PK\x03\x04" else "json"
    digest = hashlib.sha256(content).hexdigest()
    if kind == "zip":
        files = _unzip(content, name)
        return LoadedExport(_from_csv(files, name), digest, text)
    return LoadedExport(parse_json_export(content, name), digest, text)


def _fetch(url: str, api_key: str | None, timeout: float) -> tuple[bytes, str]:
    import httpx

    headers = {"Accept": "application/json, application/zip"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    response.read()
                    raise ExportError([Problem(url, f"реестр ответил {response.status_code}: "
                                                    f"{response.text[:300]}", "http_error")])
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_EXPORT_BYTES:
                        raise ExportError([Problem(url, "выгрузка слишком велика", "too_large")])
                    chunks.append(chunk)
                content = b"".join(chunks)
                kind = "zip" if "zip" in response.headers.get("content-type", "") or content[:4] == b"PK\x03\x04" \
                    else "json"
                return content, kind
    except httpx.HTTPError as error:
        raise ExportError([Problem(url, f"реестр недоступен: {type(error).__name__}: {error}",
                                   "unreachable")]) from None


def _digest_files(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _unzip(content: bytes, name: str) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise ExportError([Problem(name, "повреждённый архив .zip", "bad_archive")]) from None
    files = {}
    with archive:
        total = sum(m.file_size for m in archive.infolist())
        if total > MAX_EXPORT_BYTES:
            raise ExportError([Problem(name, "архив распаковывается в слишком большой объём", "archive_too_large")])
        for member in archive.infolist():
            base = member.filename.replace("\\", "/").rsplit("/", 1)[-1]
            if member.is_dir() or base.startswith(".") or "__MACOSX" in member.filename:
                continue
            with archive.open(member) as stream:
                files[base] = stream.read(member.file_size + 1)[: member.file_size]
    return files


def parse_json_export(content: bytes, name: str = "export.json") -> Export:
    try:
        export = Export.model_validate_json(content)
    except ValidationError as error:
        report = ProblemReport()
        for item in error.errors(include_url=False):
            loc = list(item.get("loc", ()))
            column = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
            value = item.get("input")
            report.add(name, item.get("msg", "invalid"), code=item.get("type", "invalid"), column=column or None,
                       value=None if isinstance(value, (dict, list)) else value)
        raise ExportError.from_report(report) from None
    check_export(export, name)
    return export


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportError([Problem(name, "файл не в кодировке UTF-8", "encoding")]) from None


def _csv_rows(files: dict[str, bytes], file: str, source: str, report: ProblemReport) -> list[dict] | None:
    if file not in files:
        report.add(f"{source}/{file}", "файл отсутствует в выгрузке", code="missing_file")
        return None
    reader = csv.DictReader(io.StringIO(_decode(files[file], file), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_CSV[file] if c not in header]
    for column in missing:
        report.add(file, "нет обязательного столбца", code="missing_column", column=column)
    if missing:
        return None
    reader.fieldnames = header
    return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def _split_codes(text: str) -> list[str]:
    return [part.strip() for part in text.replace("|", ";").split(";") if part.strip()]


def _from_csv(files: dict[str, bytes], source: str) -> Export:
    report = ProblemReport()
    tables = {file: _csv_rows(files, file, source, report) for file in EXPORT_CSV}
    if report:
        raise ExportError.from_report(report)
    meta = {}
    for meta_name in ("meta.json", "export.json", "manifest.json"):
        if meta_name in files:
            try:
                meta = json.loads(_decode(files[meta_name], meta_name))
            except json.JSONDecodeError:
                report.add(meta_name, "некорректный JSON", code="bad_json")
            break
    programs = [{**row, "competencies": _split_codes(row.get("competencies", ""))} for row in tables["programs.csv"]]
    sessions = []
    for row in tables["sessions.csv"]:
        place = {k: row.get(k, "") for k in ("municipality_code", "municipality_name", "address")}
        sessions.append({k: row[k] for k in REQUIRED_CSV["sessions.csv"]} |
                        {"place": place if any(place.values()) else None})
    vouchers = [{**row, "status": row.get("status") or "active"} for row in tables["vouchers.csv"]]
    parsed = {}
    for file, model, rows in (("programs.csv", Program, programs), ("sessions.csv", Session, sessions),
                              ("vouchers.csv", Voucher, vouchers)):
        try:
            parsed[file] = TypeAdapter(list[model]).validate_python(rows)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                loc = list(item.get("loc", ()))
                row = loc[0] + 2 if loc and isinstance(loc[0], int) else None
                column = ".".join(str(p) for p in loc[1:]) or None
                value = item.get("input")
                report.add(file, item.get("msg", "invalid"), code=item.get("type", "invalid"), row=row,
                           column=column, value=None if isinstance(value, (dict, list)) else value)
    if report:
        raise ExportError.from_report(report)
    try:
        export = Export(registry=str(meta.get("registry", "")), exported_at=meta.get("exported_at"),
                        programs=parsed["programs.csv"], sessions=parsed["sessions.csv"],
                        vouchers=parsed["vouchers.csv"])
    except ValidationError as error:
        raise ExportError([Problem("meta.json", str(error.errors()[0].get("msg")), "invalid")]) from None
    check_export(export, source, csv_files=True)
    return export


def check_export(export: Export, name: str, csv_files: bool = False) -> None:
    """What a schema cannot say: unique ids, sessions of known programs, start <= end."""
    report = ProblemReport()

    def where(file: str, key: str, index: int) -> dict:
        return {"row": index + 2} if csv_files else {"column": f"{key}[{index}]"}

    def file_of(file: str) -> str:
        return file if csv_files else name

    for key, file, id_field, items in (("programs", "programs.csv", "registry_id", export.programs),
                                       ("sessions", "sessions.csv", "session_id", export.sessions),
                                       ("vouchers", "vouchers.csv", "certificate_id", export.vouchers)):
        seen = set()
        for i, item in enumerate(items):
            value = getattr(item, id_field)
            if value in seen:
                report.add(file_of(file), f"{id_field} повторяется", code="duplicate_id", value=value,
                           **where(file, key, i))
            seen.add(value)
    programs = {p.registry_id for p in export.programs}
    for i, session in enumerate(export.sessions):
        if session.program_id not in programs:
            report.add(file_of("sessions.csv"), "сессия неизвестной программы (нет в programs)", code="unknown_id",
                       value=session.program_id, **where("sessions.csv", "sessions", i))
        if session.start > session.end:
            report.add(file_of("sessions.csv"), "начало сессии позже её конца", code="bad_range",
                       value=f"{session.start} > {session.end}", **where("sessions.csv", "sessions", i))
    if report:
        raise ExportError.from_report(report)


# ------------------------------------------------------------------------------------------------
# the mapping files
# ------------------------------------------------------------------------------------------------

def read_mapping(path: str | Path | None, bundle: str | Path | None = None,
                 municipalities: str | Path | None = None) -> Mapping:
    """Competency mapping: CSV `registry_code, competency_id[, weight]` (a code may map to several
    competencies; an empty competency_id ignores the code without reporting it), or a JSON object
    `{code: competency_id | [competency_id, ...] | {competency_id: weight}}`. Without a file, codes
    equal to the bundle's competency ids map to themselves. Municipality mapping (optional): CSV
    `registry_code, municipality_id`."""
    mapping = Mapping()
    report = ProblemReport()
    known = _bundle_ids(bundle, "competencies.csv", "competency_id") if bundle else None
    if path is None:
        mapping.competencies = {cid: [(cid, 1.0)] for cid in (known or ())}
    else:
        path = Path(path)
        if not path.is_file():
            raise ExportError([Problem(str(path), "файл соответствия компетенций не найден", "not_found")],
                              title="Ошибки в файле соответствия компетенций")
        data = path.read_bytes()
        if path.suffix.lower() == ".json":
            _mapping_from_json(data, path.name, mapping, report)
        else:
            _mapping_from_csv(data, path.name, mapping, report)
        if known is not None:
            for code, targets in mapping.competencies.items():
                for cid, _ in targets:
                    if cid not in known:
                        report.add(path.name, "неизвестная компетенция (нет в competencies.csv набора)",
                                   code="unknown_id", column="competency_id", value=cid)
    if municipalities is not None:
        mpath = Path(municipalities)
        if not mpath.is_file():
            report.add(str(mpath), "файл соответствия муниципалитетов не найден", code="not_found")
        else:
            rows = list(csv.DictReader(io.StringIO(_decode(mpath.read_bytes(), mpath.name), newline="")))
            for i, row in enumerate(rows):
                code, mid = (row.get("registry_code") or "").strip(), (row.get("municipality_id") or "").strip()
                if not code or not mid:
                    report.add(mpath.name, "нужны registry_code и municipality_id", code="missing_value", row=i + 2)
                else:
                    mapping.municipalities[code] = mid
    if report:
        raise ExportError.from_report(report, "Ошибки в файле соответствия")
    return mapping


def _mapping_from_csv(data: bytes, name: str, mapping: Mapping, report: ProblemReport) -> None:
    reader = csv.DictReader(io.StringIO(_decode(data, name), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    for column in ("registry_code", "competency_id"):
        if column not in header:
            report.add(name, "нет обязательного столбца", code="missing_column", column=column)
    if report:
        return
    reader.fieldnames = header
    for i, row in enumerate(reader):
        code = (row.get("registry_code") or "").strip()
        cid = (row.get("competency_id") or "").strip()
        text = (row.get("weight") or "").strip()
        if not code:
            report.add(name, "пустой код реестра", code="missing_value", row=i + 2, column="registry_code")
            continue
        targets = mapping.competencies.setdefault(code, [])
        if not cid:
            continue
        try:
            weight = float(text) if text else 1.0
        except ValueError:
            report.add(name, "нужно число", code="not_a_number", row=i + 2, column="weight", value=text)
            continue
        if not 0 < weight <= 1:
            report.add(name, "вес должен быть в (0, 1]", code="out_of_range", row=i + 2, column="weight", value=text)
            continue
        targets.append((cid, weight))


def _mapping_from_json(data: bytes, name: str, mapping: Mapping, report: ProblemReport) -> None:
    try:
        value = json.loads(_decode(data, name))
    except json.JSONDecodeError as error:
        report.add(name, f"некорректный JSON: {error.msg}", code="bad_json")
        return
    value = value.get("competencies", value) if isinstance(value, dict) else value
    if not isinstance(value, dict):
        report.add(name, "ожидается объект {код реестра: компетенция}", code="bad_json")
        return
    for code, target in value.items():
        if isinstance(target, str):
            pairs = [(target, 1.0)] if target else []
        elif isinstance(target, list):
            pairs = [(str(t), 1.0) for t in target]
        elif isinstance(target, dict):
            pairs = [(str(t), w) for t, w in target.items()]
        else:
            report.add(name, "ожидается строка, список или объект", code="bad_value", column=str(code))
            continue
        good = []
        for cid, weight in pairs:
            if not isinstance(weight, (int, float)) or not 0 < weight <= 1:
                report.add(name, "вес должен быть в (0, 1]", code="out_of_range", column=str(code), value=weight)
            else:
                good.append((cid, float(weight)))
        mapping.competencies[str(code)] = good


def _bundle_ids(bundle: str | Path, file: str, column: str) -> set[str] | None:
    path = Path(bundle) / file
    if not path.is_file():
        return None
    return set(pd.read_csv(path, dtype=str, keep_default_na=False, usecols=[column])[column].str.strip())


# ------------------------------------------------------------------------------------------------
# merging into a bundle
# ------------------------------------------------------------------------------------------------

def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(float(value), 4))


def _weight(value: float) -> str:
    return f"{max(0.01, min(1.0, round(value, 2))):.2f}"


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of strings (DataFrame.to_dict is slow on string columns)."""
    columns = list(frame.columns)
    return [dict(zip(columns, values)) for values in zip(*(frame[c].tolist() for c in columns))]


def _fresh_id(wanted: str, taken: set[str]) -> str:
    candidate, n = wanted, 1
    while candidate in taken:
        n += 1
        candidate = f"{wanted}~{n}"
    taken.add(candidate)
    return candidate


class _Notes:
    def __init__(self) -> None:
        self.report = ProblemReport()
        self.unmapped: dict[str, int] = {}

    def add(self, file: str, code: str, message: str, value=None) -> None:
        self.report.add(file, message, code=code, value=value)


def import_export(bundle: str | Path, loaded: LoadedExport, mapping: Mapping, *, keep_withdrawn: bool = False,
                  dry_run: bool = False, allow_older: bool = False) -> ImportReport:
    """Merges the export into the bundle folder (see the module's docstring)."""
    started = time.perf_counter()
    folder = Path(bundle)
    if not folder.is_dir():
        raise ExportError([Problem(str(folder), "импорт пишет в папку набора данных: распакуйте .zip или "
                                                "сохраните книгу Excel как папку CSV", "not_a_folder")],
                          title="Набор данных не подходит для импорта")
    export = loaded.export
    state = _read_state(folder)
    if state and not allow_older and export.exported_at and state.get("exported_at"):
        previous = dt.datetime.fromisoformat(state["exported_at"])
        current = export.exported_at
        if _aware(current) < _aware(previous):
            raise ExportError([Problem(loaded.source, f"выгрузка от {current.isoformat()} старше уже "
                                                      f"импортированной ({previous.isoformat()})", "stale_export")],
                              title="Выгрузка реестра устарела")
    raw = _read_bundle_files(folder)
    notes = _Notes()
    merged = _Merger(raw, export, mapping, notes, keep_withdrawn).run()

    old_tables = {file: raw.tables[file] for file in merged}
    diff = {
        "programs.csv": _diff(old_tables["programs.csv"], merged["programs.csv"], ["program_id"]),
        "program_sessions.csv": _diff(old_tables["program_sessions.csv"], merged["program_sessions.csv"],
                                      ["session_id"]),
        "program_competencies.csv": _diff(old_tables["program_competencies.csv"], merged["program_competencies.csv"],
                                          ["program_id", "competency_id"]),
        "teachers.csv": _diff(old_tables["teachers.csv"], merged["teachers.csv"], ["teacher_id"],
                              columns=["voucher_rub", "certificate_id"]),
    }
    contents = {file: _csv_bytes(frame) for file, frame in merged.items()}
    changed_files = [file for file, content in contents.items() if (folder / file).read_bytes() != content]
    result = ImportReport(
        source=loaded.source, registry=export.registry, export_sha256=loaded.sha256, bundle=str(folder),
        exported_at=export.exported_at.isoformat() if export.exported_at else None, changed=bool(changed_files),
        dry_run=dry_run, counts={
            "programs": len(export.programs), "sessions": len(export.sessions), "vouchers": len(export.vouchers),
            "bundle_programs": len(merged["programs.csv"]),
            "bundle_registry_programs": int(merged["programs.csv"]["registry_id"].ne("").sum()),
            "bundle_program_sessions": len(merged["program_sessions.csv"]),
            "bundle_teachers": len(merged["teachers.csv"]),
            "teachers_with_certificate": int(merged["teachers.csv"]["certificate_id"].ne("").sum()),
        }, diff=diff, unmapped_codes=dict(sorted(notes.unmapped.items())),
        notes=[p.as_dict() for p in notes.report.problems[:500]], notes_total=notes.report.total)
    if changed_files and not dry_run:
        _write_validated(folder, {f: contents[f] for f in changed_files})
        result.files_written = changed_files
    if not dry_run and (changed_files or _state_outdated(state, loaded, export)):
        _write_state(folder, loaded, export)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


NEEDED = (REGION_FILE, "programs.csv", "program_sessions.csv", "program_competencies.csv", "teachers.csv",
          "site_sessions.csv", "municipalities.csv")


def _read_bundle_files(folder: Path) -> RawBundle:
    """The files an import reads (not diagnostics: the merged bundle is validated as a whole later)."""
    report = ProblemReport()
    raw = RawBundle(source=str(folder))
    for name in NEEDED:
        path = folder / name
        if not path.is_file():
            report.add(name, "файл отсутствует", code="missing_file")
            continue
        take_file(raw, name, path.read_bytes(), report)
    if report:
        raise BundleError.from_report(report)
    return raw


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _read_state(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _state_outdated(state: dict | None, loaded: LoadedExport, export: Export) -> bool:
    if state is None:
        return True
    exported = export.exported_at.isoformat() if export.exported_at else None
    return state.get("export_sha256") != loaded.sha256 or state.get("exported_at") != exported


def _write_state(folder: Path, loaded: LoadedExport, export: Export) -> None:
    state = {"registry": export.registry, "exported_at": export.exported_at.isoformat() if export.exported_at
             else None, "export_sha256": loaded.sha256, "source": loaded.source,
             "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    _atomic_write(folder / STATE_FILE, (json.dumps(state, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def _atomic_write(path: Path, content: bytes) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _write_validated(folder: Path, contents: dict[str, bytes]) -> None:
    """Builds the merged bundle in a hidden folder inside the bundle (hard links for untouched
    files; the loader ignores folders), validates it, then replaces the changed files. A bundle
    that would not load is never written."""
    staging = Path(tempfile.mkdtemp(prefix=".registry-import-", dir=folder))
    try:
        for file in folder.iterdir():
            if file.is_file() and file.name not in contents:
                try:
                    os.link(file, staging / file.name)
                except OSError:
                    shutil.copy2(file, staging / file.name)
        for name, content in contents.items():
            (staging / name).write_bytes(content)
        try:
            load_bundle(staging)
        except BundleError as error:
            raise BundleError(error.problems, error.total,
                              "Набор данных после импорта был бы некорректным; ничего не записано") from None
        for name in contents:
            with open(staging / name, "rb+") as stream:
                os.fsync(stream.fileno())
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _diff(old: pd.DataFrame, new: pd.DataFrame, key: list[str], columns: list[str] | None = None) -> FileDiff:
    """Rows added, removed and changed between two string tables, by key (vectorised)."""
    columns = columns or [c for c in new.columns if c not in key]
    old = old.copy()
    for column in columns:
        if column not in old.columns:
            old[column] = ""
    left = old[key + columns].drop_duplicates(key)
    right = new[key + columns].drop_duplicates(key)
    both = left.merge(right, on=key, how="outer", suffixes=("_old", "_new"), indicator=True)
    ident = both[key[0]].astype(str)
    for column in key[1:]:
        ident = ident + "/" + both[column].astype(str)
    added = ident[both["_merge"].eq("right_only")]
    removed = ident[both["_merge"].eq("left_only")]
    common = both["_merge"].eq("both")
    diff = FileDiff(added=len(added), removed=len(removed))
    examples: dict[str, list] = {}
    if len(added):
        examples["added"] = added.head(EXAMPLES).tolist()
    if len(removed):
        examples["removed"] = removed.head(EXAMPLES).tolist()
    changed_any = pd.Series(False, index=both.index)
    for column in columns:
        differs = common & both[f"{column}_old"].fillna("").ne(both[f"{column}_new"].fillna(""))
        if differs.any():
            changed_any |= differs
            rows = both[differs].head(EXAMPLES)
            examples[f"changed:{column}"] = [
                {"id": i, "old": o, "new": n}
                for i, o, n in zip(ident[rows.index], rows[f"{column}_old"], rows[f"{column}_new"])]
    diff.changed = int(changed_any.sum())
    diff.examples = examples
    return diff


class _Merger:
    def __init__(self, raw: RawBundle, export: Export, mapping: Mapping, notes: _Notes, keep_withdrawn: bool) -> None:
        self.raw, self.export, self.mapping, self.notes = raw, export, mapping, notes
        self.keep_withdrawn = keep_withdrawn
        region = raw.region or {}
        self.period = (_date(region.get("period_start")), _date(region.get("period_end")))

    def run(self) -> dict[str, pd.DataFrame]:
        programs, program_ids = self._programs()
        sessions = self._sessions(programs, program_ids)
        competencies = self._competencies(programs, program_ids)
        teachers = self._teachers()
        return {"programs.csv": programs, "program_sessions.csv": sessions,
                "program_competencies.csv": competencies, "teachers.csv": teachers}

    # programs.csv ---------------------------------------------------------------------------------
    def _programs(self) -> tuple[pd.DataFrame, dict[str, str]]:
        table = self.raw.tables["programs.csv"]
        columns = list(table.columns)
        by_registry = {rid: i for i, rid in enumerate(table["registry_id"]) if rid}
        exported = {p.registry_id: p for p in self.export.programs}
        self.withdrawn = [rid for rid in by_registry if rid not in exported]
        keep_rows = [i for i, rid in enumerate(table["registry_id"])
                     if not rid or rid in exported or self.keep_withdrawn]
        if self.withdrawn and not self.keep_withdrawn:
            self.notes.add("programs.csv", "withdrawn", f"программ больше нет в реестре, удалены: "
                                                         f"{len(self.withdrawn)}", ", ".join(self.withdrawn[:EXAMPLES]))
        rows = _records(table.iloc[keep_rows])
        taken = {row["program_id"] for row in rows}
        index_of = {row["registry_id"]: n for n, row in enumerate(rows) if row["registry_id"]}
        program_ids = {}
        for program in sorted(self.export.programs, key=lambda p: p.registry_id):
            values = {"registry_id": program.registry_id, "provider": program.provider, "name": program.title,
                      "format": "online" if program.form == "online" else "offline",
                      "hours": _number(program.hours), "price_rub": str(program.price_rub)}
            if program.registry_id in index_of:
                row = rows[index_of[program.registry_id]]
                row.update(values)
            else:
                row = {c: "" for c in columns} | values
                row["program_id"] = _fresh_id(program.registry_id, taken)
                rows.append(row)
            program_ids[program.registry_id] = row["program_id"]
        self.removed_programs = set(table["program_id"]) - {r["program_id"] for r in rows}
        return pd.DataFrame(rows, columns=columns), program_ids

    # program_sessions.csv -------------------------------------------------------------------------
    def _sessions(self, programs: pd.DataFrame, program_ids: dict[str, str]) -> pd.DataFrame:
        table = self.raw.tables["program_sessions.csv"]
        columns = list(table.columns)
        if "registry_session_id" not in columns:
            columns.append("registry_session_id")
            table = table.assign(registry_session_id="")
        exported_programs = set(program_ids.values())
        # rows the registry owns: sessions of programs it lists (or withdrew); withdrawn kept as they are
        owned = table["program_id"].isin(exported_programs | self.removed_programs)
        kept = table[~owned]
        previous = {rid: sid for rid, sid in zip(table.loc[owned, "registry_session_id"].tolist(),
                                                 table.loc[owned, "session_id"].tolist()) if rid}
        taken = set(self.raw.tables["site_sessions.csv"]["session_id"]) | set(kept["session_id"])
        municipalities = self.raw.tables["municipalities.csv"]
        by_id = set(municipalities["municipality_id"])
        by_name = {name.casefold(): mid for mid, name in zip(municipalities["municipality_id"], municipalities["name"])}
        forms = {p.registry_id: p.form for p in self.export.programs}
        rows = _records(kept)
        start, end = self.period
        outside, unplaced = [], []
        wanted = []
        for session in self.export.sessions:
            if start and end and (session.start < start or session.end > end):
                outside.append(session.session_id)
                continue
            municipality = ""
            if forms[session.program_id] != "online":
                municipality = self._place(session, by_id, by_name)
                if municipality is None:
                    unplaced.append(session.session_id)
                    continue
            wanted.append((session, municipality))
        # ids already given to these registry sessions stay theirs
        for session, _ in wanted:
            if session.session_id in previous:
                taken.add(previous[session.session_id])
        for session, municipality in sorted(wanted, key=lambda w: (w[0].program_id, w[0].start, w[0].session_id)):
            sid = previous.get(session.session_id) or _fresh_id(session.session_id, taken)
            rows.append({c: "" for c in columns} | {
                "session_id": sid, "program_id": program_ids[session.program_id], "start": session.start.isoformat(),
                "end": session.end.isoformat(), "seats": str(session.seats), "municipality_id": municipality,
                "registry_session_id": session.session_id})
        if outside:
            self.notes.add("sessions", "outside_period", f"сессии вне периода планирования {start} — {end} "
                                                         f"пропущены: {len(outside)}", ", ".join(outside[:EXAMPLES]))
        if unplaced:
            self.notes.add("sessions", "unknown_place", f"очные сессии с неизвестным муниципалитетом пропущены "
                                                        f"(нужен файл соответствия муниципалитетов): {len(unplaced)}",
                           ", ".join(unplaced[:EXAMPLES]))
        return pd.DataFrame(rows, columns=columns)

    def _place(self, session: Session, by_id: set[str], by_name: dict[str, str]) -> str | None:
        place = session.place
        if place is None:
            return None
        code = place.municipality_code
        if code and code in self.mapping.municipalities:
            return self.mapping.municipalities[code]
        if code and code in by_id:
            return code
        if place.municipality_name and place.municipality_name.casefold() in by_name:
            return by_name[place.municipality_name.casefold()]
        return None

    # program_competencies.csv ---------------------------------------------------------------------
    def _competencies(self, programs: pd.DataFrame, program_ids: dict[str, str]) -> pd.DataFrame:
        table = self.raw.tables["program_competencies.csv"]
        columns = list(table.columns)
        owned = table["program_id"].isin(set(program_ids.values()) | self.removed_programs)
        rows = _records(table[~owned])
        unmapped: Counter = Counter()
        for program in sorted(self.export.programs, key=lambda p: p.registry_id):
            weights: dict[str, float] = defaultdict(float)
            for ref in program.competencies:
                targets = self.mapping.competencies.get(ref.code)
                if targets is None:
                    unmapped[ref.code] += 1
                    continue
                for cid, weight in targets:
                    weights[cid] = max(weights[cid], ref.weight * weight)
            for cid in sorted(weights):
                rows.append({c: "" for c in columns} | {"program_id": program_ids[program.registry_id],
                                                        "competency_id": cid, "weight": _weight(weights[cid])})
        self.notes.unmapped = dict(unmapped)
        if unmapped:
            self.notes.add("programs", "unmapped_code", f"коды компетенций реестра без соответствия: {len(unmapped)} "
                                                        "(добавьте их в файл соответствия)",
                           ", ".join(sorted(unmapped)[:EXAMPLES]))
        return pd.DataFrame(rows, columns=columns)

    # teachers.csv -------------------------------------------------------------------------------
    def _teachers(self) -> pd.DataFrame:
        table = self.raw.tables["teachers.csv"].copy()
        if "certificate_id" not in table.columns:
            table["certificate_id"] = ""
        if not self.export.vouchers:
            return table
        vouchers = pd.DataFrame({
            "teacher_id": [v.teacher_id for v in self.export.vouchers],
            "certificate_id": [v.certificate_id for v in self.export.vouchers],
            "balance": [v.balance_rub for v in self.export.vouchers],
            "active": [v.status == "active" for v in self.export.vouchers],
        })
        known = vouchers["teacher_id"].isin(set(table["teacher_id"]))
        unknown = vouchers.loc[~known, "teacher_id"]
        if len(unknown):
            self.notes.add("vouchers", "unknown_teacher", f"сертификаты педагогов, которых нет в наборе: "
                                                          f"{len(unknown)}", ", ".join(unknown.head(EXAMPLES)))
        vouchers = vouchers[known]
        several = vouchers["teacher_id"].duplicated(keep=False)
        if several.any():
            teachers = vouchers.loc[several, "teacher_id"].drop_duplicates()
            self.notes.add("vouchers", "several_vouchers", f"у педагогов несколько сертификатов, взят действующий "
                                                           f"с наибольшим остатком: {len(teachers)}",
                           ", ".join(teachers.head(EXAMPLES)))
        chosen = vouchers.sort_values(["teacher_id", "active", "balance", "certificate_id"],
                                      ascending=[True, False, False, True]).drop_duplicates("teacher_id")
        inactive = chosen.loc[~chosen["active"], "teacher_id"]
        if len(inactive):
            self.notes.add("vouchers", "voucher_inactive", f"сертификат приостановлен или закрыт, остаток 0: "
                                                           f"{len(inactive)}", ", ".join(inactive.head(EXAMPLES)))
        balance = pd.Series(chosen["balance"].where(chosen["active"], 0).astype("int64").astype(str).to_numpy(),
                            index=chosen["teacher_id"].to_numpy())
        certificate = pd.Series(chosen["certificate_id"].to_numpy(), index=chosen["teacher_id"].to_numpy())
        has = table["teacher_id"].isin(balance.index)
        table.loc[has, "voucher_rub"] = table.loc[has, "teacher_id"].map(balance)
        table.loc[has, "certificate_id"] = table.loc[has, "teacher_id"].map(certificate)
        gone = ~has & table["certificate_id"].ne("") & table["voucher_rub"].ne("0")
        if gone.any():
            table.loc[gone, "voucher_rub"] = "0"
            self.notes.add("vouchers", "voucher_gone",
                           f"сертификата больше нет в реестре, остаток 0: {int(gone.sum())}",
                           ", ".join(table.loc[gone, "teacher_id"].head(EXAMPLES)))
        return table


__all__ = ["ExportError", "ImportReport", "LoadedExport", "Mapping", "REGION_FILE", "STATE_FILE", "import_export",
           "parse_json_export", "read_export", "read_mapping"]
