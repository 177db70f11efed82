"""A nation (SPEC §7): region bundles tied by federal programs, seats and money.

`load_nation(path)` reads nation.json, regions.csv, every region bundle (engine.bundle) and the
federal files, and raises NationError listing every problem of every file at once; a region's
problems are named `<region_id>/<file>`. `regional_view(nation, r)` is region r as the regional
engine sees it: its own programs plus the federal programs and the federal sessions it may take
(rule 11: online ones, and offline ones held in the region), appended after its own.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from . import region as rg
from .bundle import Column, _Checker, _parse_date, load_bundle
from .params import AssignmentRef, Params, params_from_dict
from .problems import BundleError, InputError, Problem, ProblemReport
from .sources import MAX_UNPACKED_BYTES, RawBundle, _parse_csv

NATION_FILE = "nation.json"
FEDERAL = "federal"  # the fund of federal assignments (funded_by) and the budget's scope

FEDERAL_SCHEMA: dict[str, tuple[Column, ...]] = {
    "regions.csv": (Column("region_id", "id"), Column("name", "text"), Column("folder", "text")),
    "federal_programs.csv": (Column("program_id", "id"), Column("registry_id", "optional_text"),
                             Column("provider", "optional_text"), Column("name", "text"),
                             Column("format", "enum", choices=("online", "offline")), Column("hours", "number"),
                             Column("price_rub", "money")),
    "federal_program_competencies.csv": (Column("program_id", "ref", "federal_programs.csv"),
                                         Column("competency_id", "text"), Column("weight", "weight")),
    "federal_program_sessions.csv": (Column("session_id", "id"), Column("program_id", "ref", "federal_programs.csv"),
                                     Column("start", "date"), Column("end", "date"), Column("seats", "count"),
                                     Column("region_id", "optional_ref", "regions.csv"),
                                     Column("municipality_id", "optional_text")),
    "federal_budget.csv": (Column("scope", "enum", choices=(FEDERAL, "region")), Column("scope_id", "optional_text"),
                           Column("amount_rub", "money")),
}
# Nation bundles of up to this many bytes are unpacked from a .zip (85 full regions are ~2 GB).
MAX_NATION_ZIP_BYTES = 4 * 1024**3
# ... and of up to this many files (85 regions of some 15 files each are ~1,300): more is not a nation,
# and unpacking a million empty files is work an upload must not cause.
MAX_NATION_ZIP_MEMBERS = 20_000


class NationError(BundleError):
    def __init__(self, problems: list[Problem], total: int | None = None,
                 title: str = "Ошибки в наборе данных страны") -> None:
        super().__init__(problems, total, title)


@dataclass(frozen=True)
class Federal:
    """The federal layer, typed and indexed; sessions' `region` is an index into the nation's regions."""

    program_ids: tuple[str, ...]
    registry_ids: tuple[str, ...]
    providers: tuple[str, ...]
    program_names: tuple[str, ...]
    online: np.ndarray  # bool per program
    hours: np.ndarray
    price_rub: np.ndarray  # int64 per program
    weights: dict[str, dict[str, float]]  # program id -> competency id -> weight
    session_ids: tuple[str, ...]
    session_program: np.ndarray  # int per session
    start: np.ndarray  # day numbers
    end: np.ndarray
    seats: np.ndarray
    session_region: np.ndarray  # -1 for online
    session_municipality: tuple[str, ...]  # "" for online
    budget_rub: int
    quota_rub: np.ndarray  # per region, -1 where no row exists

    @property
    def session_price(self) -> np.ndarray:
        return self.price_rub[self.session_program]


@dataclass(frozen=True)
class NationData:
    name: str
    period_start: dt.date
    period_end: dt.date
    region_ids: tuple[str, ...]
    region_names: tuple[str, ...]
    regions: tuple[rg.RegionData, ...]
    federal: Federal

    def counts(self) -> dict[str, int]:
        return {"regions": len(self.regions), "teachers": sum(len(r.teachers) for r in self.regions),
                "schools": sum(len(r.schools) for r in self.regions),
                "federal_programs": len(self.federal.program_ids),
                "federal_sessions": len(self.federal.session_ids),
                "federal_seats": int(self.federal.seats.sum()), "federal_budget_rub": self.federal.budget_rub}


def is_nation(path: str | Path) -> bool:
    """A folder holding nation.json, or a .zip holding it (at the top or in one folder)."""
    path = Path(path)
    if path.is_dir():
        return (path / NATION_FILE).is_file()
    if path.suffix.lower() == ".zip" and path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                return any(PurePosixPath(n).name == NATION_FILE and len(PurePosixPath(n).parts) <= 2
                           for n in archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    return False


def load_nation(path: str | Path, *, max_unpacked_bytes: int = MAX_NATION_ZIP_BYTES) -> NationData:
    """Reads and validates a nation (folder or .zip); raises NationError listing every problem."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="marshrut-nation-") as folder:
            return _load_folder(_unpacked(path, Path(folder), max_unpacked_bytes))
    return _load_folder(path)


def load_nation_upload(content: bytes, filename: str, *, max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> NationData:
    """The same for an uploaded .zip held in memory (the API): a nation is a folder of folders, so
    only a .zip carries it; it may unpack into at most `max_unpacked_bytes`."""
    if not filename.lower().endswith(".zip"):
        raise NationError([Problem(filename, "набор данных страны загружается архивом .zip (папка страны с "
                                             "nation.json и папками регионов)", "unsupported_format")])
    with tempfile.TemporaryDirectory(prefix="marshrut-nation-upload-") as folder:
        archive = Path(folder) / "nation.zip"
        archive.write_bytes(content)
        unpacked = Path(folder) / "nation"
        unpacked.mkdir()
        return _load_folder(_unpacked(archive, unpacked, max_unpacked_bytes, name=filename))


def _unpacked(archive_path: Path, into: Path, max_bytes: int = MAX_NATION_ZIP_BYTES, name: str | None = None) -> Path:
    name = name or archive_path.name
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError):
        raise NationError([Problem(name, "повреждённый архив .zip", "bad_archive")]) from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_NATION_ZIP_MEMBERS:
            raise NationError([Problem(name, f"в архиве слишком много файлов ({len(members)})", "archive_too_large")])
        if sum(m.file_size for m in members) > max_bytes:
            raise NationError([Problem(name, "архив распаковывается в слишком большой объём",
                                       "archive_too_large")])
        for member in members:
            parts = PurePosixPath(member.filename.replace("\\", "/"))
            if parts.is_absolute() or ".." in parts.parts:
                raise NationError([Problem(name, "путь в архиве выходит за пределы архива",
                                           "unsafe_path", value=member.filename)])
            target = into.joinpath(*parts.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:  # a member's data may not match its header (a damaged or forged archive)
                with archive.open(member) as source, open(target, "wb") as sink:
                    sink.write(source.read(max_bytes + 1))
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError):
                raise NationError([Problem(name, "повреждённый архив .zip", "bad_archive",
                                           value=member.filename)]) from None
    tops = list(into.iterdir())
    if not (into / NATION_FILE).exists() and len(tops) == 1 and tops[0].is_dir():
        return tops[0]
    return into


def _load_folder(folder: Path) -> NationData:
    report = ProblemReport()
    if not folder.is_dir():
        raise NationError([Problem(str(folder), "набор данных страны не найден (нужна папка или .zip)", "not_found")])
    header = _read_header(folder, report)
    raw = RawBundle(source=str(folder))
    for file in FEDERAL_SCHEMA:
        if (folder / file).is_file():
            table = _parse_csv((folder / file).read_bytes(), file, report)
            if table is not None:
                raw.tables[file] = table
        else:
            report.add(file, "файл отсутствует", code="missing_file")
    checker = _Checker(raw, report)
    typed: dict[str, pd.DataFrame] = {}
    for file, columns in FEDERAL_SCHEMA.items():
        table = raw.tables.get(file)
        if table is None:
            continue
        missing = [c.name for c in columns if c.name not in table.columns]
        for name in missing:
            report.add(file, "нет обязательного столбца", code="missing_column", column=name)
        if missing:
            continue
        if file in ("regions.csv", "federal_budget.csv") and table.empty:
            report.add(file, "в файле нет ни одной строки данных", code="empty_file")
        typed[file] = pd.DataFrame({c.name: checker._check_column(file, table[c.name], c) for c in columns},
                                   index=table.index)
    regions_raw = raw.tables.get("regions.csv") if "regions.csv" in typed else None
    region_ids, region_names, regions = _load_regions(folder, regions_raw, header, report)
    federal = _check_federal(raw, typed, region_ids, regions, header, report)
    if report:
        raise NationError.from_report(report)
    assert header is not None and federal is not None
    return NationData(header[0], header[1], header[2], tuple(region_ids), tuple(region_names), tuple(regions),
                      federal)


def _read_header(folder: Path, report: ProblemReport) -> tuple[str, dt.date, dt.date] | None:
    file = folder / NATION_FILE
    if not file.is_file():
        report.add(NATION_FILE, "файл отсутствует: папка страны должна содержать nation.json", code="missing_file")
        return None
    try:
        value = json.loads(file.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.add(NATION_FILE, f"некорректный JSON: {exc}", code="bad_json")
        return None
    if not isinstance(value, dict):
        report.add(NATION_FILE, "ожидается объект JSON с полями name, period_start, period_end", code="bad_json")
        return None
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        report.add(NATION_FILE, "нужно непустое название", code="missing_value", column="name")
    dates = []
    for key in ("period_start", "period_end"):
        parsed = _parse_date(value.get(key))
        if parsed is None:
            report.add(NATION_FILE, "нужна дата в формате ГГГГ-ММ-ДД", code="bad_date", column=key,
                       value=value.get(key))
        dates.append(parsed)
    if dates[0] and dates[1] and dates[0] > dates[1]:
        report.add(NATION_FILE, "начало периода позже его конца", code="bad_range", column="period_start")
        return None
    if not isinstance(name, str) or not name.strip() or None in dates:
        return None
    return name.strip(), dates[0], dates[1]


def _load_regions(folder: Path, table: pd.DataFrame | None, header, report: ProblemReport
                  ) -> tuple[list[str], list[str], list[rg.RegionData]]:
    """Every region bundle; a region's problems are reported as `<region_id>/<file>`."""
    ids, names, regions = [], [], []
    if table is None:
        return ids, names, regions
    root = folder.resolve()
    seen: set[str] = set()
    for row, (region_id, name, sub) in enumerate(zip(table["region_id"], table["name"], table["folder"]), start=2):
        if not region_id or region_id in seen or not sub:
            continue  # reported by the column checks
        seen.add(region_id)
        where = (folder / sub).resolve()
        if root not in where.parents and where != root:
            report.add("regions.csv", "папка региона вне папки страны", code="unsafe_path", row=row,
                       column="folder", value=sub)
            continue
        if not where.is_dir():
            report.add("regions.csv", "папка региона не найдена", code="not_found", row=row, column="folder", value=sub)
            continue
        try:
            region = load_bundle(where)
        except BundleError as error:
            for p in error.problems:
                report.add(f"{region_id}/{p.file}", p.message, code=p.code, row=p.row, column=p.column, value=p.value)
            report.total += error.total - len(error.problems)
            continue
        if header is not None and (region.period_start, region.period_end) != (header[1], header[2]):
            report.add(f"{region_id}/region.json", f"период региона {region.period_start} — {region.period_end} "
                       f"отличается от периода страны {header[1]} — {header[2]}", code="period_mismatch",
                       column="period_start")
        ids.append(region_id)
        names.append(name)
        regions.append(region)
    return ids, names, regions


def _flag(report: ProblemReport, file: str, column: str, values: pd.Series, mask, message: str, code: str) -> None:
    for row in np.flatnonzero(np.asarray(mask, dtype=bool)):
        report.add(file, message, code=code, row=int(row) + 2, column=column, value=values.iat[row])


def _check_federal(raw: RawBundle, typed: dict[str, pd.DataFrame], region_ids: list[str],
                   regions: list[rg.RegionData], header, report: ProblemReport) -> Federal | None:
    """The checks across files (SPEC §7) that the column checks cannot see."""
    t = raw.tables
    programs = t.get("federal_programs.csv") if "federal_programs.csv" in typed else None
    links = t.get("federal_program_competencies.csv") if "federal_program_competencies.csv" in typed else None
    sessions = t.get("federal_program_sessions.csv") if "federal_program_sessions.csv" in typed else None
    budget = t.get("federal_budget.csv") if "federal_budget.csv" in typed else None
    region_index = {r: i for i, r in enumerate(region_ids)}
    listed = set(t["regions.csv"]["region_id"]) if "regions.csv" in typed else set()
    if programs is not None:
        registry = programs["registry_id"]
        _flag(report, "federal_programs.csv", "registry_id", registry, registry.ne("") & registry.duplicated(),
              "registry_id повторяется", "duplicate_id")
        for region_id, region in zip(region_ids, regions):
            _flag(report, "federal_programs.csv", "program_id", programs["program_id"],
                  programs["program_id"].isin(region.programs.index),
                  f"совпадает с программой региона {region_id}: федеральные id не должны повторять региональные",
                  "duplicate_id")
            _flag(report, "federal_programs.csv", "registry_id", registry,
                  registry.ne("") & registry.isin(set(region.programs.registry_ids)),
                  f"совпадает с registry_id программы региона {region_id}", "duplicate_id")
    if links is not None:
        pair = links.duplicated(["program_id", "competency_id"]) & links["program_id"].ne("")
        _flag(report, "federal_program_competencies.csv", "competency_id", links["competency_id"], pair,
              "пара (program_id, competency_id) повторяется", "duplicate_pair")
        for region_id, region in zip(region_ids, regions):
            unknown = links["competency_id"].ne("") & ~links["competency_id"].isin(region.competencies.index)
            _flag(report, "federal_program_competencies.csv", "competency_id", links["competency_id"], unknown,
                  f"компетенции нет в competencies.csv региона {region_id}", "unknown_id")
    if sessions is not None:
        _check_sessions(sessions, typed["federal_program_sessions.csv"], programs, region_index, listed, regions,
                        header, report)
    quota = np.full(len(region_ids), -1, dtype=np.int64)
    budget_rub = 0
    if budget is not None:
        amounts = typed["federal_budget.csv"]["amount_rub"]
        is_federal = budget["scope"].eq(FEDERAL)
        if is_federal.sum() == 0:
            report.add("federal_budget.csv", "нет строки федерального бюджета (scope = federal)",
                       code="missing_federal_budget", column="scope")
        elif is_federal.sum() > 1:
            _flag(report, "federal_budget.csv", "scope", budget["scope"], is_federal & is_federal.duplicated(),
                  "строка федерального бюджета должна быть ровно одна", "duplicate_federal_budget")
        else:
            budget_rub = int(np.nan_to_num(amounts[is_federal].iloc[0]))
        is_region = budget["scope"].eq("region")
        _flag(report, "federal_budget.csv", "scope_id", budget["scope_id"],
              is_region & ~budget["scope_id"].isin(listed), "неизвестный регион (нет в regions.csv)", "unknown_id")
        _flag(report, "federal_budget.csv", "scope_id", budget["scope_id"],
              is_region & budget.duplicated(["scope", "scope_id"]), "квота региона указана дважды", "duplicate_id")
        for row in np.flatnonzero(is_region.to_numpy()):
            r = region_index.get(budget["scope_id"].iat[row])
            if r is not None and np.isfinite(amounts.iat[row]):
                quota[r] = int(amounts.iat[row])
    if report or programs is None or sessions is None or links is None:
        return None
    ptyped, styped = typed["federal_programs.csv"], typed["federal_program_sessions.csv"]
    program_index = {p: i for i, p in enumerate(programs["program_id"])}
    weights: dict[str, dict[str, float]] = {p: {} for p in programs["program_id"]}
    for p, c, w in zip(links["program_id"], links["competency_id"], typed["federal_program_competencies.csv"]["weight"]):
        weights[p][c] = float(w)
    epoch = dt.date(1970, 1, 1).toordinal()
    return Federal(
        program_ids=tuple(programs["program_id"]), registry_ids=tuple(programs["registry_id"]),
        providers=tuple(programs["provider"]), program_names=tuple(programs["name"]),
        online=programs["format"].eq("online").to_numpy(), hours=ptyped["hours"].to_numpy(float),
        price_rub=ptyped["price_rub"].to_numpy(np.int64), weights=weights,
        session_ids=tuple(sessions["session_id"]),
        session_program=sessions["program_id"].map(program_index).to_numpy(np.int64),
        start=styped["start"].to_numpy("datetime64[D]").astype(np.int64) + epoch,
        end=styped["end"].to_numpy("datetime64[D]").astype(np.int64) + epoch,
        seats=styped["seats"].to_numpy(np.int64),
        session_region=sessions["region_id"].map(region_index).fillna(-1).to_numpy(np.int64),
        session_municipality=tuple(sessions["municipality_id"]), budget_rub=budget_rub, quota_rub=quota)


def _check_sessions(sessions: pd.DataFrame, typed: pd.DataFrame, programs: pd.DataFrame | None,
                    region_index: dict[str, int], listed: set[str], regions: list[rg.RegionData], header,
                    report: ProblemReport) -> None:
    file = "federal_program_sessions.csv"
    start, end = typed["start"], typed["end"]
    both = start.notna() & end.notna()
    _flag(report, file, "start", sessions["start"], both & (start > end), "начало позже окончания", "bad_range")
    if header is not None:
        first, last = pd.Timestamp(header[1]), pd.Timestamp(header[2])
        _flag(report, file, "start", sessions["start"], both & ((start < first) | (end > last)),
              f"сессия выходит за период планирования {header[1]} — {header[2]}", "outside_period")
    for region in regions:
        clash = sessions["session_id"].isin(region.program_sessions.index) | sessions["session_id"].isin(
            region.site_sessions.index)
        _flag(report, file, "session_id", sessions["session_id"], clash,
              f"совпадает с id сессии региона «{region.name}»", "duplicate_id")
    if programs is None:
        return
    online = sessions["program_id"].map(dict(zip(programs["program_id"], programs["format"]))).eq("online")
    has_region, has_place = sessions["region_id"].ne(""), sessions["municipality_id"].ne("")
    _flag(report, file, "region_id", sessions["region_id"], online & has_region,
          "у онлайн-сессии не должно быть региона", "online_with_place")
    _flag(report, file, "municipality_id", sessions["municipality_id"], online & has_place,
          "у онлайн-сессии не должно быть муниципалитета", "online_with_place")
    offline = ~online & sessions["program_id"].isin(set(programs["program_id"]))
    _flag(report, file, "region_id", sessions["region_id"], offline & ~has_region,
          "у очной сессии должен быть указан регион", "offline_without_place")
    _flag(report, file, "municipality_id", sessions["municipality_id"], offline & ~has_place,
          "у очной сессии должен быть указан муниципалитет её региона", "offline_without_place")
    for row in np.flatnonzero((offline & has_region & has_place).to_numpy()):
        r = region_index.get(sessions["region_id"].iat[row])
        if r is not None and sessions["municipality_id"].iat[row] not in regions[r].municipalities.index:
            report.add(file, f"муниципалитета нет в municipalities.csv региона {sessions['region_id'].iat[row]}",
                       code="unknown_id", row=int(row) + 2, column="municipality_id",
                       value=sessions["municipality_id"].iat[row])


# ---- region r as the regional engine sees it -------------------------------------------------------
@dataclass(frozen=True)
class RegionalView:
    """Region r with the federal sessions it may take appended to its program sessions.

    `federal_session[k]` is the nation's federal session index of the region's program session
    `first_federal + k`. With `priced=False` their programs cost nothing in the region (rule 11:
    neither voucher nor budgets pay); the national solve charges their price and the federal prices
    itself. With `priced=True` they carry their real price, for writing the plan (SPEC §5 cost)."""

    region: rg.RegionData
    first_federal: int  # index of the first federal program session
    federal_session: np.ndarray  # nation's federal session index per appended session


def regional_view(nation: NationData, r: int, priced: bool = False) -> RegionalView:
    base, fed = nation.regions[r], nation.federal
    sessions = np.flatnonzero((fed.session_region == -1) | (fed.session_region == r))
    comp = base.competencies.index
    weights = np.zeros((len(fed.program_ids), len(comp)))
    for p, pid in enumerate(fed.program_ids):
        for c, w in fed.weights[pid].items():
            weights[p, comp[c]] = w
    n_own = len(base.programs)
    programs = rg.Programs(
        ids=base.programs.ids + fed.program_ids, registry_ids=base.programs.registry_ids + fed.registry_ids,
        providers=base.programs.providers + fed.providers, names=base.programs.names + fed.program_names,
        online=np.r_[base.programs.online, fed.online].astype(bool), hours=np.r_[base.programs.hours, fed.hours],
        price_rub=np.r_[base.programs.price_rub, fed.price_rub if priced else np.zeros(len(fed.price_rub), np.int64)
                        ].astype(np.int64),
        weights=np.vstack([base.programs.weights, weights]))
    municipality = np.array([base.municipalities.index[fed.session_municipality[s]] if fed.session_region[s] == r
                             else -1 for s in sessions], dtype=np.int64)
    ps = base.program_sessions
    program_sessions = rg.ProgramSessions(
        ids=ps.ids + tuple(fed.session_ids[s] for s in sessions),
        program=np.r_[ps.program, n_own + fed.session_program[sessions]].astype(np.int64),
        start=np.r_[ps.start, fed.start[sessions]].astype(np.int64), end=np.r_[ps.end, fed.end[sessions]].astype(np.int64),
        seats=np.r_[ps.seats, fed.seats[sessions]].astype(np.int64),
        municipality=np.r_[ps.municipality, municipality].astype(np.int64))
    return RegionalView(replace(base, programs=programs, program_sessions=program_sessions), len(ps), sessions)


# ---- parameters of a nation ------------------------------------------------------------------------
@dataclass(frozen=True)
class NationParams:
    """One §3 parameter object for the nation; pinned and forbidden entries split by region."""

    params: Params
    pinned: dict[str, list[AssignmentRef]]
    forbidden: dict[str, list[AssignmentRef]]
    # The region of each pinned (forbidden) entry in the order given: an entry is named by its place there.
    given_order: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def entries(self, kind: str) -> list[tuple[str, AssignmentRef]]:
        """The pinned (`kind` "pinned") or forbidden entries with their regions, in the order given."""
        by_region = {region_id: iter(refs) for region_id, refs in getattr(self, kind).items()}
        order = self.given_order.get(kind) or tuple(r for r, refs in getattr(self, kind).items() for _ in refs)
        return [(region_id, next(by_region[region_id])) for region_id in order]

    def for_region(self, region_id: str, time_limit_s: float | None = None) -> Params:
        update: dict = {"pinned": self.pinned.get(region_id, []), "forbidden": self.forbidden.get(region_id, [])}
        if time_limit_s is not None:
            update["time_limit_s"] = time_limit_s
        return self.params.model_copy(update=update)


def nation_params(data: dict | None, region_ids: tuple[str, ...], source: str = "params") -> NationParams:
    """Validates the parameters; every pinned or forbidden entry must name a known `region_id`."""
    data = dict(data or {})
    problems: list[Problem] = []
    split: dict[str, dict[str, list]] = {"pinned": {}, "forbidden": {}}
    given: dict[str, list[str]] = {"pinned": [], "forbidden": []}
    for kind in ("pinned", "forbidden"):
        entries = data.get(kind) or []
        if not isinstance(entries, list):
            continue  # the model's check reports it
        plain = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                plain.append(entry)
                continue
            entry = dict(entry)
            region_id = entry.pop("region_id", None)
            if region_id in (None, ""):
                problems.append(Problem(source, "у закреплённого или запрещённого назначения страны нужен region_id",
                                        "missing_value", i + 1, f"{kind}.region_id"))
            elif region_id not in region_ids:
                problems.append(Problem(source, "неизвестный регион (нет в regions.csv)", "unknown_id", i + 1,
                                        f"{kind}.region_id", str(region_id)))
            else:
                split[kind].setdefault(region_id, []).append(len(plain))
                given[kind].append(region_id)
            plain.append(entry)
        data[kind] = plain
    try:
        params = params_from_dict(data, source)
    except InputError as error:  # the model's own problems, reported with the regions' ones
        raise InputError(problems + error.problems, error.total + len(problems), error.title) from None
    if problems:
        raise InputError(problems, title="Ошибки в параметрах плана")
    return NationParams(params.model_copy(update={"pinned": [], "forbidden": []}),
                        {r: [params.pinned[i] for i in idx] for r, idx in split["pinned"].items()},
                        {r: [params.forbidden[i] for i in idx] for r, idx in split["forbidden"].items()},
                        {kind: tuple(regions) for kind, regions in given.items()})


def load_nation_params(path: str | Path | None, region_ids: tuple[str, ...]) -> NationParams:
    if path is None:
        return nation_params(None, region_ids)
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError([Problem(path.name, "файл параметров не найден", "not_found")],
                         title="Ошибки в параметрах плана") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError([Problem(path.name, f"некорректный JSON: {exc}", "bad_json")],
                         title="Ошибки в параметрах плана") from None
    if not isinstance(data, dict):
        raise InputError([Problem(path.name, "ожидается объект JSON", "bad_json")], title="Ошибки в параметрах плана")
    return nation_params(data, region_ids, path.name)
