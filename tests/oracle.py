"""Independent test oracle for marshrut, written from the contract alone (the bundle, rules, objective and
plan files of docs/bundle.md, docs/parameters.md and docs/plan-files.md; SPEC v1).

It does not import the engine.  It is the referee that tests and benchmarks use:

* ``read_bundle(path)``            plain reading of a bundle (folder, .zip or .xlsx)
* ``bundle_problems(path)``        the input problems of SPEC §2 (empty list = valid bundle)
* ``DEFAULT_PARAMS`` / ``full_params(params)``   SPEC §3
* ``plan_frame(bundle, triples)``  the SPEC §6 ``assignments.csv`` rows for (teacher, kind, resource)
* ``check_plan(bundle, params, assignments)``   every violated rule of SPEC §4 and §6
* ``objective(bundle, params, assignments)``    SPEC §5
* ``exact_optimum(bundle, params)`` the true optimum by an exact MILP (scipy / HiGHS)
* ``random_bundle(seed, out_dir, ...)``         a small random valid bundle

Every function taking ``bundle`` accepts a path (folder, .zip, .xlsx), the dict returned by
``read_bundle`` or a ``BundleIndex``.  Violations are strings ``"<tag>: <text>"`` where the tag
is one of ``VIOLATION_TAGS``; the text names the teacher and the resource.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import csgraph_from_dense, dijkstra

# --------------------------------------------------------------------------------------
# SPEC §2: files and columns
# --------------------------------------------------------------------------------------

FILES: dict[str, list[str]] = {
    "competencies": ["competency_id", "name", "group"],
    "municipalities": ["municipality_id", "name", "lat", "lon"],
    "roads": ["from_municipality", "to_municipality", "minutes"],
    "schools": ["school_id", "name", "municipality_id", "low_results"],
    "teachers": ["teacher_id", "school_id", "role", "voucher_rub", "max_hours"],
    "diagnostics": ["teacher_id", "competency_id", "score"],
    "mentors": ["mentor_id", "teacher_id", "school_id", "capacity", "remote", "stipend_rub",
                "hours_per_mentee"],
    "mentor_competencies": ["mentor_id", "competency_id", "weight"],
    "sites": ["site_id", "school_id", "name"],
    "site_competencies": ["site_id", "competency_id", "weight"],
    "site_sessions": ["session_id", "site_id", "start", "end", "seats", "hours", "cost_rub"],
    "programs": ["program_id", "registry_id", "provider", "name", "format", "hours", "price_rub"],
    "program_competencies": ["program_id", "competency_id", "weight"],
    "program_sessions": ["session_id", "program_id", "start", "end", "seats", "municipality_id"],
    "budgets": ["scope", "scope_id", "amount_rub"],
}

NUMERIC: dict[str, list[str]] = {
    "municipalities": ["lat", "lon"],
    "roads": ["minutes"],
    "schools": ["low_results"],
    "teachers": ["voucher_rub", "max_hours"],
    "diagnostics": ["score"],
    "mentors": ["capacity", "remote", "stipend_rub", "hours_per_mentee"],
    "mentor_competencies": ["weight"],
    "site_competencies": ["weight"],
    "site_sessions": ["seats", "hours", "cost_rub"],
    "programs": ["hours", "price_rub"],
    "program_competencies": ["weight"],
    "program_sessions": ["seats"],
    "budgets": ["amount_rub"],
}
# 0/1 flags; "true"/"false"/"yes"/"no" are read leniently.
FLAGS = {("schools", "low_results"), ("mentors", "remote")}

ASSIGNMENT_COLUMNS = ["teacher_id", "kind", "resource_id", "start", "end", "hours", "cost_rub",
                      "funded_by"]
KINDS = ("mentor", "internship", "program")
VIOLATION_TAGS = ("column", "unknown", "kind", "duplicate", "field", "capacity", "count",
                  "mentor", "internship", "travel", "schedule", "hours", "voucher", "budget",
                  "pinned", "forbidden")

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EPS = 1e-6

# --------------------------------------------------------------------------------------
# SPEC §3: parameters
# --------------------------------------------------------------------------------------

DEFAULT_PARAMS: dict = {
    "deficit_threshold": 70,
    "low_results_priority": 1.5,
    "rub_per_point": 100000,
    "max_travel_minutes": 180,
    "max_internships": 1,
    "max_programs": 2,
    "mentor_from_other_school": True,
    "time_limit_s": 60,
    "pinned": [],
    "forbidden": [],
}


def _triple(e) -> tuple[str, str, str]:
    if isinstance(e, dict):
        return (str(e["teacher_id"]), str(e["kind"]), str(e["resource_id"]))
    t, k, r = e
    return (str(t), str(k), str(r))


def full_params(params: dict | None = None) -> dict:
    """Defaults of SPEC §3 overlaid with ``params`` (unknown keys are kept)."""
    p = dict(DEFAULT_PARAMS)
    p["pinned"] = []
    p["forbidden"] = []
    if params:
        p.update(params)
    p["pinned"] = [dict(zip(("teacher_id", "kind", "resource_id"), _triple(e)))
                   for e in (p.get("pinned") or [])]
    p["forbidden"] = [dict(zip(("teacher_id", "kind", "resource_id"), _triple(e)))
                      for e in (p.get("forbidden") or [])]
    return p


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------

def _flag(v) -> float:
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "y", "да", "1.0"):
        return 1.0
    if s in ("0", "false", "no", "n", "нет", "0.0"):
        return 0.0
    return float("nan")


def _finish(frames: dict[str, pd.DataFrame], region: dict) -> dict:
    out: dict = {}
    for name, cols in FILES.items():
        df = frames.get(name)
        if df is None:
            df = pd.DataFrame({c: pd.Series(dtype=str) for c in cols})
        df = df.copy()
        df.columns = [str(c).strip() for c in df.columns]
        for c in df.columns:
            df[c] = df[c].astype(str).str.strip()
        for c in cols:  # a missing column is a bundle problem; keep the oracle working
            if c not in df.columns:
                df[c] = ""
        for c in NUMERIC.get(name, []):
            if (name, c) in FLAGS:
                df[c] = df[c].map(_flag)
            else:
                df[c] = pd.to_numeric(df[c].replace("", np.nan), errors="coerce").astype(float)
        out[name] = df.reset_index(drop=True)
    out["region"] = dict(region)
    return out


def _read_dir(d: Path) -> dict:
    frames = {}
    for name in FILES:
        f = d / f"{name}.csv"
        if f.exists():
            frames[name] = pd.read_csv(f, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    rj = d / "region.json"
    region = json.loads(rj.read_text(encoding="utf-8")) if rj.exists() else {}
    return _finish(frames, region)


def _read_xlsx(f: Path) -> dict:
    sheets = pd.read_excel(f, sheet_name=None, dtype=str, keep_default_na=False)
    frames = {k: v for k, v in sheets.items() if k in FILES}
    region = {}
    if "region" in sheets:
        reg = sheets["region"]
        region = {str(k).strip(): str(v).strip() for k, v in zip(reg["key"], reg["value"])}
    return _finish(frames, region)


def read_bundle(path) -> dict:
    """Read a bundle: ``{file stem: DataFrame, ..., "region": dict}``.

    Ids and text are strings (``dtype=str``, no NA parsing, stripped); the numeric columns of
    SPEC §2 are floats (NaN where not a number); 0/1 flags are 1.0/0.0.  A missing file gives an
    empty frame with its columns (``bundle_problems`` reports it)."""
    path = Path(path)
    if path.is_dir():
        return _read_dir(path)
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(path) as z:
                z.extractall(tmp)
            hits = sorted(Path(tmp).rglob("region.json"), key=lambda p: len(p.parts))
            return _read_dir(hits[0].parent if hits else Path(tmp))
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    raise ValueError(f"not a bundle: {path}")


def _date(v) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    s = str(v).strip()
    if not _ISO.match(s):
        return None
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------
# Index
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Act:
    """One assignable activity (a resource of a kind)."""
    kind: str
    rid: str
    start: dt.date
    end: dt.date
    dated: bool          # takes part in the schedule rule (internships, offline program sessions)
    hours: float
    cost: float          # stipend_rub | cost_rub | price_rub
    place: str | None    # municipality to travel to (None: no travel)
    group: tuple | None  # ("site", id) | ("program", id): never two sessions of one group
    weights: tuple       # ((competency_id, weight), ...)
    cap: float           # capacity | seats
    owner_teacher: str   # mentors.teacher_id ("" otherwise)
    school: str          # mentor's school (mentor) | site school (internship) | ""


class BundleIndex:
    """Dict lookups over a bundle, and the shortest travel times."""

    def __init__(self, bundle):
        if isinstance(bundle, BundleIndex):
            bundle = bundle.bundle
        if not isinstance(bundle, dict):
            bundle = read_bundle(bundle)
        self.bundle = b = bundle
        reg = b["region"]
        self.period_start = _date(reg.get("period_start"))
        self.period_end = _date(reg.get("period_end"))

        self.schools = {r["school_id"]: r for r in b["schools"].to_dict("records")}
        self.teachers = {}
        for r in b["teachers"].to_dict("records"):
            sch = self.schools.get(r["school_id"], {})
            r = dict(r)
            r["muni"] = sch.get("municipality_id", "")
            r["low"] = sch.get("low_results", 0) == 1
            self.teachers[r["teacher_id"]] = r
        self.competencies = list(b["competencies"]["competency_id"])
        self.diag = {(r["teacher_id"], r["competency_id"]): float(r["score"])
                     for r in b["diagnostics"].to_dict("records")}

        def weights(df, key):
            w = defaultdict(dict)
            for r in df.to_dict("records"):
                w[r[key]][r["competency_id"]] = float(r["weight"])
            return w

        mw = weights(b["mentor_competencies"], "mentor_id")
        sw = weights(b["site_competencies"], "site_id")
        pw = weights(b["program_competencies"], "program_id")

        self.acts: dict[tuple[str, str], Act] = {}
        ps, pe = self.period_start, self.period_end
        for r in b["mentors"].to_dict("records"):
            sch = self.schools.get(r["school_id"], {})
            self.acts[("mentor", r["mentor_id"])] = Act(
                "mentor", r["mentor_id"], ps, pe, False, float(r["hours_per_mentee"]),
                float(r["stipend_rub"]), None if r["remote"] == 1 else sch.get("municipality_id", ""),
                None, tuple(sorted(mw[r["mentor_id"]].items())), float(r["capacity"]),
                r["teacher_id"], r["school_id"])
        self.sites = {r["site_id"]: r for r in b["sites"].to_dict("records")}
        for r in b["site_sessions"].to_dict("records"):
            site = self.sites.get(r["site_id"], {})
            sch = self.schools.get(site.get("school_id", ""), {})
            self.acts[("internship", r["session_id"])] = Act(
                "internship", r["session_id"], _date(r["start"]), _date(r["end"]), True,
                float(r["hours"]), float(r["cost_rub"]), sch.get("municipality_id", ""),
                ("site", r["site_id"]), tuple(sorted(sw[r["site_id"]].items())),
                float(r["seats"]), "", site.get("school_id", ""))
        self.programs = {r["program_id"]: r for r in b["programs"].to_dict("records")}
        for r in b["program_sessions"].to_dict("records"):
            prog = self.programs.get(r["program_id"], {})
            online = str(prog.get("format", "")).strip().lower() == "online"
            self.acts[("program", r["session_id"])] = Act(
                "program", r["session_id"], _date(r["start"]), _date(r["end"]), not online,
                float(prog.get("hours", float("nan"))), float(prog.get("price_rub", float("nan"))),
                None if online else r["municipality_id"], ("program", r["program_id"]),
                tuple(sorted(pw[r["program_id"]].items())), float(r["seats"]), "", "")
        self.kind_of: dict[str, list[str]] = defaultdict(list)
        for (k, rid) in self.acts:
            self.kind_of[rid].append(k)

        bud = b["budgets"]
        self.region_budget = math.inf
        self.muni_budget: dict[str, float] = {}
        for r in bud.to_dict("records"):
            if r["scope"] == "region":
                self.region_budget = float(r["amount_rub"])
            elif r["scope"] == "municipality":
                self.muni_budget[r["scope_id"]] = float(r["amount_rub"])

        # shortest paths (own Dijkstra input: the minimum over parallel edges, undirected)
        ids = list(dict.fromkeys(
            list(b["municipalities"]["municipality_id"]) + list(b["roads"]["from_municipality"])
            + list(b["roads"]["to_municipality"])))
        self.muni_pos = {m: i for i, m in enumerate(ids)}
        n = len(ids)
        D = np.full((n, n), np.inf)
        for r in b["roads"].to_dict("records"):
            i, j, w = self.muni_pos[r["from_municipality"]], self.muni_pos[r["to_municipality"]], r["minutes"]
            if i == j or not np.isfinite(w):
                continue
            D[i, j] = D[j, i] = min(D[i, j], float(w))
        self.dist = (dijkstra(csgraph_from_dense(D, null_value=np.inf), directed=False)
                     if n else np.zeros((0, 0)))

    def travel(self, a: str, b: str) -> float:
        if a == b:
            return 0.0
        i, j = self.muni_pos.get(a), self.muni_pos.get(b)
        if i is None or j is None:
            return math.inf
        return float(self.dist[i, j])

    def need(self, t: str, c: str, p: dict) -> float:
        s = self.diag.get((t, c))
        thr = float(p["deficit_threshold"])
        if s is None or thr <= 0:
            return 0.0
        prio = float(p["low_results_priority"]) if self.teachers[t]["low"] else 1.0
        return prio * max(0.0, thr - s) / thr

    def funded_by(self, t: str, act: Act) -> str:
        return "voucher" if act.kind == "program" else f"municipality:{self.teachers[t]['muni']}"

    def pair_problems(self, t: str, act: Act, p: dict) -> list[str]:
        """Rules that concern one (teacher, activity) alone: 3, 4, 5."""
        out = []
        te = self.teachers[t]
        if act.kind == "mentor":
            if act.owner_teacher and act.owner_teacher == t:
                out.append(f"mentor: teacher {t} is mentor {act.rid} themselves")
            if _truthy(p["mentor_from_other_school"]) and act.school == te["school_id"]:
                out.append(f"mentor: teacher {t} and mentor {act.rid} are both of school "
                           f"{act.school} (mentor_from_other_school)")
        if act.kind == "internship" and act.school == te["school_id"]:
            out.append(f"internship: teacher {t} has internship {act.rid} at their own school "
                       f"{act.school}")
        if act.place is not None:
            d = self.travel(te["muni"], act.place)
            if not d <= float(p["max_travel_minutes"]):
                what = "unreachable" if math.isinf(d) else f"{d:g} min"
                out.append(f"travel: teacher {t} (municipality {te['muni']}) to {act.kind} "
                           f"{act.rid} (municipality {act.place}): {what} > "
                           f"max_travel_minutes {p['max_travel_minutes']}")
        return out


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes")
    return bool(v)


def _index(bundle) -> BundleIndex:
    return bundle if isinstance(bundle, BundleIndex) else BundleIndex(bundle)


def _overlap(a: Act, b: Act) -> bool:
    return a.start <= b.end and b.start <= a.end


# --------------------------------------------------------------------------------------
# SPEC §6 rows
# --------------------------------------------------------------------------------------

def plan_frame(bundle, triples) -> pd.DataFrame:
    """The SPEC §6 ``assignments.csv`` frame for (teacher_id, kind, resource_id) triples
    (dicts or tuples).  Raises KeyError on unknown ids."""
    ix = _index(bundle)
    rows = []
    for e in triples:
        t, k, r = _triple(e)
        if t not in ix.teachers:
            raise KeyError(f"unknown teacher {t}")
        act = ix.acts[(k, r)]
        rows.append({"teacher_id": t, "kind": k, "resource_id": r,
                     "start": act.start.isoformat(), "end": act.end.isoformat(),
                     "hours": act.hours, "cost_rub": act.cost,
                     "funded_by": ix.funded_by(t, act)})
    df = pd.DataFrame(rows, columns=ASSIGNMENT_COLUMNS)
    if len(df):
        df = df.sort_values(["teacher_id", "start", "kind", "resource_id"], kind="stable")
        for c in ("hours", "cost_rub"):
            if (df[c] == df[c].round()).all():
                df[c] = df[c].astype(int)
    return df.reset_index(drop=True)


def _rows(assignments) -> tuple[list[dict], list[str], set[str]]:
    if isinstance(assignments, (str, Path)):
        assignments = pd.read_csv(assignments, dtype=str, keep_default_na=False)
    df = assignments
    problems = []
    if len(df.columns) == 0 and len(df) == 0:
        return [], [], set(ASSIGNMENT_COLUMNS)  # a bare empty frame is the empty plan
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in df.columns]
    if missing:
        problems.append(f"column: assignments lack column(s) {', '.join(missing)} "
                        f"(SPEC §6: {', '.join(ASSIGNMENT_COLUMNS)})")
    rows = []
    for r in df.to_dict("records"):
        rows.append({c: r.get(c) for c in ASSIGNMENT_COLUMNS})
    return rows, problems, {str(c) for c in df.columns}


def _s(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _num(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


# --------------------------------------------------------------------------------------
# SPEC §4: the rules
# --------------------------------------------------------------------------------------

def check_plan(bundle, params, assignments) -> list[str]:
    """Every violation of SPEC §4 (rules 1-10) and §6 (columns and row values) by a plan.

    ``assignments``: a DataFrame (or a path to assignments.csv).  Returns readable strings
    ``"<tag>: ..."`` naming the teacher and the resource; empty list = valid plan."""
    ix = _index(bundle)
    p = full_params(params)
    rows, out, have_cols = _rows(assignments)

    seen: set[tuple[str, str, str]] = set()
    plan: list[tuple[str, Act]] = []
    for n, r in enumerate(rows, start=1):
        t, k, rid = _s(r["teacher_id"]), _s(r["kind"]), _s(r["resource_id"])
        where = f"row {n} ({t}, {k}, {rid})"
        if t not in ix.teachers:
            out.append(f"unknown: {where}: unknown teacher {t!r}")
            continue
        if k not in KINDS:
            out.append(f"kind: {where}: teacher {t}, resource {rid}: kind {k!r} is not one of "
                       f"{', '.join(KINDS)}")
            continue
        act = ix.acts.get((k, rid))
        if act is None:
            others = ix.kind_of.get(rid)
            if others:
                out.append(f"kind: {where}: teacher {t}: resource {rid} is a {'/'.join(others)}, "
                           f"not a {k}")
            else:
                out.append(f"unknown: {where}: teacher {t}: unknown {k} resource {rid!r}")
            continue
        if (t, k, rid) in seen:
            out.append(f"duplicate: {where}: teacher {t} has {k} {rid} more than once")
            continue
        seen.add((t, k, rid))
        plan.append((t, act))

        # §6 row values
        for col, want in (("start", act.start), ("end", act.end)):
            if col in have_cols:
                v = r[col]
                if _date(v) != want:
                    out.append(f"field: {where}: teacher {t}, {k} {rid}: {col} is {_s(v)!r}, "
                               f"expected {want.isoformat()}")
        for col, want in (("hours", act.hours), ("cost_rub", act.cost)):
            if col in have_cols:
                got = _num(r[col])
                if got is None or abs(got - want) > _EPS:
                    out.append(f"field: {where}: teacher {t}, {k} {rid}: {col} is {_s(r[col])!r}, "
                               f"expected {want:g}")
        want_f = ix.funded_by(t, act)
        if "funded_by" in have_cols and _s(r["funded_by"]) != want_f:
            out.append(f"field: {where}: teacher {t}, {k} {rid}: funded_by is "
                       f"{_s(r['funded_by'])!r}, expected {want_f!r}")

    by_teacher: dict[str, list[Act]] = defaultdict(list)
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t, act in plan:
        by_teacher[t].append(act)
        users[(act.kind, act.rid)].append(t)
        out.extend(ix.pair_problems(t, act, p))  # rules 3, 4, 5

    # rule 1: capacity
    for (k, rid), ts in users.items():
        cap = ix.acts[(k, rid)].cap
        if len(ts) > cap:
            what = "mentees" if k == "mentor" else "teachers"
            out.append(f"capacity: {k} {rid} has {len(ts)} {what} ({', '.join(sorted(ts))}) > "
                       f"{'capacity' if k == 'mentor' else 'seats'} {cap:g}")

    limits = {"mentor": 1, "internship": float(p["max_internships"]),
              "program": float(p["max_programs"])}
    for t, acts in by_teacher.items():
        te = ix.teachers[t]
        # rule 2: counts
        for k, lim in limits.items():
            mine = sorted(a.rid for a in acts if a.kind == k)
            if len(mine) > lim:
                out.append(f"count: teacher {t} has {len(mine)} {k} assignments "
                           f"({', '.join(mine)}) > {lim:g}")
        groups = defaultdict(list)
        for a in acts:
            if a.group is not None:
                groups[a.group].append(a.rid)
        for (gk, gid), rids in groups.items():
            if len(rids) > 1:
                out.append(f"count: teacher {t} has {len(rids)} sessions of the same {gk} {gid} "
                           f"({', '.join(sorted(rids))})")
        # rule 6: schedule
        dated = sorted((a for a in acts if a.dated), key=lambda a: (a.start, a.rid))
        for a, b in itertools.combinations(dated, 2):
            if _overlap(a, b):
                out.append(f"schedule: teacher {t}: {a.kind} {a.rid} ({a.start}..{a.end}) overlaps "
                           f"{b.kind} {b.rid} ({b.start}..{b.end})")
        # rule 7: hours
        h = sum(a.hours for a in acts)
        if h > float(te["max_hours"]) + _EPS:
            out.append(f"hours: teacher {t} has {h:g} hours ({', '.join(a.rid for a in acts)}) > "
                       f"max_hours {te['max_hours']:g}")
        # rule 8: voucher
        v = sum(a.cost for a in acts if a.kind == "program")
        if v > float(te["voucher_rub"]) + _EPS:
            out.append(f"voucher: teacher {t} programs cost {v:g} rub "
                       f"({', '.join(a.rid for a in acts if a.kind == 'program')}) > "
                       f"voucher_rub {te['voucher_rub']:g}")

    # rule 9: budgets
    spend: dict[str, float] = defaultdict(float)
    payers: dict[str, list[str]] = defaultdict(list)
    for t, act in plan:
        if act.kind in ("mentor", "internship"):
            m = ix.teachers[t]["muni"]
            spend[m] += act.cost
            payers[m].append(f"{t}/{act.rid}")
    for m, s in sorted(spend.items()):
        if m in ix.muni_budget and s > ix.muni_budget[m] + _EPS:
            out.append(f"budget: municipality {m} pays {s:g} rub ({', '.join(payers[m])}) > "
                       f"amount_rub {ix.muni_budget[m]:g}")
    total = sum(spend.values())
    if total > ix.region_budget + _EPS:
        out.append(f"budget: region pays {total:g} rub > amount_rub {ix.region_budget:g}")

    # rule 10: pinned and forbidden
    for e in p["pinned"]:
        tr = _triple(e)
        if tr not in seen:
            out.append(f"pinned: teacher {tr[0]}: pinned {tr[1]} {tr[2]} is not in the plan")
    for e in p["forbidden"]:
        tr = _triple(e)
        if tr in seen:
            out.append(f"forbidden: teacher {tr[0]}: forbidden {tr[1]} {tr[2]} is in the plan")
    return out


# --------------------------------------------------------------------------------------
# SPEC §5: the objective
# --------------------------------------------------------------------------------------

def need_table(bundle, params=None) -> dict[tuple[str, str], float]:
    """need(t, c) > 0 for every diagnostics pair with a deficit."""
    ix = _index(bundle)
    p = full_params(params)
    out = {}
    for (t, c) in ix.diag:
        if t in ix.teachers:
            n = ix.need(t, c, p)
            if n > 0:
                out[(t, c)] = n
    return out


def objective(bundle, params, assignments) -> float:
    """SPEC §5 for a plan.  Rows naming unknown ids are ignored; a repeated
    (teacher, kind, resource) counts once."""
    ix = _index(bundle)
    p = full_params(params)
    rows, _, _ = _rows(assignments)
    seen = set()
    cover: dict[tuple[str, str], float] = defaultdict(float)
    cost = 0.0
    for r in rows:
        t, k, rid = _s(r["teacher_id"]), _s(r["kind"]), _s(r["resource_id"])
        act = ix.acts.get((k, rid))
        if t not in ix.teachers or act is None or (t, k, rid) in seen:
            continue
        seen.add((t, k, rid))
        cost += act.cost
        for c, w in act.weights:
            cover[(t, c)] += w
    gain = 0.0
    for (t, c), s in cover.items():
        if (t, c) in ix.diag:
            gain += ix.need(t, c, p) * min(1.0, s)
    return gain - cost / float(p["rub_per_point"])


# --------------------------------------------------------------------------------------
# Exact optimum (scipy.optimize.milp / HiGHS)
# --------------------------------------------------------------------------------------

class Infeasible(Exception):
    """The rules admit no plan (e.g. an impossible pinned assignment)."""


def exact_optimum(bundle, params=None, time_limit: float = 60) -> tuple[float, pd.DataFrame]:
    """The optimal objective and an optimal plan (SPEC §6 frame), by an exact MILP.

    Variables: x[t,a] binary for every (teacher, activity) allowed by the one-pair rules
    (3, 4, 5, forbidden, and one activity alone within max_hours / voucher); y[t,c] in [0, 1]
    with y <= sum w x.  All other rules are linear constraints (schedule: pairwise).
    Raises Infeasible, or RuntimeError when HiGHS does not prove optimality."""
    ix = _index(bundle)
    p = full_params(params)
    forbidden = {_triple(e) for e in p["forbidden"]}
    pinned = {_triple(e) for e in p["pinned"]}

    xs: list[tuple[str, Act]] = []
    for t, te in ix.teachers.items():
        for (k, rid), act in ix.acts.items():
            if (t, k, rid) in forbidden or ix.pair_problems(t, act, p):
                continue
            if act.hours > float(te["max_hours"]) + _EPS:
                continue
            if k == "program" and act.cost > float(te["voucher_rub"]) + _EPS:
                continue
            xs.append((t, act))
    xpos = {(t, a.kind, a.rid): i for i, (t, a) in enumerate(xs)}
    for tr in pinned:
        if tr not in xpos:
            raise Infeasible(f"pinned {tr} is not allowed by the rules")

    needs = need_table(ix, p)
    ys: list[tuple[str, str]] = []
    ypos = {}
    for i, (t, a) in enumerate(xs):
        for c, w in a.weights:
            if (t, c) in needs and (t, c) not in ypos and w > 0:
                ypos[(t, c)] = len(xs) + len(ys)
                ys.append((t, c))
    nvar = len(xs) + len(ys)
    if nvar == 0:
        return 0.0, plan_frame(ix, [])

    cvec = np.zeros(nvar)
    rpp = float(p["rub_per_point"])
    for i, (t, a) in enumerate(xs):
        cvec[i] = a.cost / rpp            # minimise -objective
    for j, tc in enumerate(ys):
        cvec[len(xs) + j] = -needs[tc]

    R, C, V, lo, hi = [], [], [], [], []

    def row(entries, lb, ub):
        r = len(lo)
        for col, val in entries:
            R.append(r)
            C.append(col)
            V.append(val)
        lo.append(lb)
        hi.append(ub)

    by_t = defaultdict(list)
    by_res = defaultdict(list)
    for i, (t, a) in enumerate(xs):
        by_t[t].append(i)
        by_res[(a.kind, a.rid)].append(i)
    # rule 1: capacity
    for (k, rid), idx in by_res.items():
        row([(i, 1.0) for i in idx], -np.inf, ix.acts[(k, rid)].cap)
    limits = {"mentor": 1.0, "internship": float(p["max_internships"]),
              "program": float(p["max_programs"])}
    for t, idx in by_t.items():
        te = ix.teachers[t]
        # rule 2: counts and one session per site / program
        for k, lim in limits.items():
            row([(i, 1.0) for i in idx if xs[i][1].kind == k], -np.inf, lim)
        groups = defaultdict(list)
        for i in idx:
            if xs[i][1].group is not None:
                groups[xs[i][1].group].append(i)
        for g in groups.values():
            if len(g) > 1:
                row([(i, 1.0) for i in g], -np.inf, 1.0)
        # rule 6: schedule, pairwise
        dated = [i for i in idx if xs[i][1].dated]
        for i, j in itertools.combinations(dated, 2):
            if _overlap(xs[i][1], xs[j][1]):
                row([(i, 1.0), (j, 1.0)], -np.inf, 1.0)
        # rule 7: hours; rule 8: voucher
        row([(i, xs[i][1].hours) for i in idx], -np.inf, float(te["max_hours"]))
        row([(i, xs[i][1].cost) for i in idx if xs[i][1].kind == "program"], -np.inf,
            float(te["voucher_rub"]))
    # rule 9: budgets
    paid = [i for i, (t, a) in enumerate(xs) if a.kind in ("mentor", "internship")]
    for m, amount in ix.muni_budget.items():
        row([(i, xs[i][1].cost) for i in paid if ix.teachers[xs[i][0]]["muni"] == m],
            -np.inf, amount)
    if math.isfinite(ix.region_budget):
        row([(i, xs[i][1].cost) for i in paid], -np.inf, ix.region_budget)
    # cover: y_tc - sum_a w(a, c) x_ta <= 0
    for (t, c), col in ypos.items():
        ent = [(col, 1.0)]
        for i in by_t[t]:
            w = dict(xs[i][1].weights).get(c, 0.0)
            if w > 0:
                ent.append((i, -w))
        row(ent, -np.inf, 0.0)

    lb = np.zeros(nvar)
    ub = np.ones(nvar)
    for tr in pinned:  # rule 10
        lb[xpos[tr]] = 1.0
    integrality = np.zeros(nvar)
    integrality[:len(xs)] = 1
    constraints = []
    if lo:
        A = coo_matrix((V, (R, C)), shape=(len(lo), nvar)).tocsr()
        constraints = [LinearConstraint(A, np.array(lo), np.array(hi))]
    res = milp(cvec, constraints=constraints, integrality=integrality, bounds=Bounds(lb, ub),
               options={"mip_rel_gap": 1e-9, "time_limit": float(time_limit), "disp": False})
    if res.status == 2:
        raise Infeasible(res.message)
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"HiGHS did not prove optimality: status {res.status}, {res.message}")
    chosen = [(t, a.kind, a.rid) for i, (t, a) in enumerate(xs) if res.x[i] > 0.5]
    frame = plan_frame(ix, chosen)
    val = objective(ix, p, frame)
    if abs(val - (-res.fun)) > 1e-6 * max(1.0, abs(val)):
        raise AssertionError(f"MILP objective {-res.fun} != recomputed {val}")
    return val, frame


# --------------------------------------------------------------------------------------
# SPEC §2 bundle validity (for random_bundle self-tests and loader tests)
# --------------------------------------------------------------------------------------

def bundle_problems(bundle_dir) -> list[str]:
    """Input problems listed in SPEC §2 (missing files/columns, empty/duplicate/unknown ids,
    bad numbers, scores, weights, dates, online/offline municipality, region budget)."""
    if isinstance(bundle_dir, BundleIndex):
        bundle_dir = bundle_dir.bundle
    out = []
    path = None if isinstance(bundle_dir, dict) else Path(bundle_dir)
    if path is not None and path.is_dir():
        for name in FILES:
            if not (path / f"{name}.csv").exists():
                out.append(f"{name}.csv: missing file")
        if not (path / "region.json").exists():
            out.append("region.json: missing file")
        for name, cols in FILES.items():
            f = path / f"{name}.csv"
            if f.exists():
                head = pd.read_csv(f, dtype=str, keep_default_na=False, nrows=0).columns
                for c in cols:
                    if c not in [h.strip() for h in head]:
                        out.append(f"{name}.csv: missing column {c}")
    b = bundle_dir if path is None else read_bundle(path)
    reg = b["region"]
    ps, pe = _date(reg.get("period_start")), _date(reg.get("period_end"))
    if ps is None or pe is None:
        out.append("region.json: period_start/period_end not ISO dates")
    elif ps > pe:
        out.append("region.json: period_start > period_end")

    keys = {"competencies": "competency_id", "municipalities": "municipality_id",
            "schools": "school_id", "teachers": "teacher_id", "mentors": "mentor_id",
            "sites": "site_id", "site_sessions": "session_id", "programs": "program_id",
            "program_sessions": "session_id"}
    ids = {}
    for name, key in keys.items():
        col = b[name][key]
        ids[name] = set(col)
        for n, v in enumerate(col, start=2):
            if v == "":
                out.append(f"{name}.csv row {n}: empty {key}")
        for v in col[col.duplicated()]:
            out.append(f"{name}.csv: duplicate {key} {v}")
    both = ids["site_sessions"] & ids["program_sessions"]
    for v in sorted(both):
        out.append(f"session id {v} in both site_sessions.csv and program_sessions.csv")

    def ref(name, col, target, allow_empty=False):
        for n, v in enumerate(b[name][col], start=2):
            if v == "" and allow_empty:
                continue
            if v not in ids[target]:
                out.append(f"{name}.csv row {n}: {col} {v!r} unknown in {target}.csv")

    ref("roads", "from_municipality", "municipalities")
    ref("roads", "to_municipality", "municipalities")
    ref("schools", "municipality_id", "municipalities")
    ref("teachers", "school_id", "schools")
    ref("diagnostics", "teacher_id", "teachers")
    ref("diagnostics", "competency_id", "competencies")
    ref("mentors", "teacher_id", "teachers", allow_empty=True)
    ref("mentors", "school_id", "schools")
    ref("mentor_competencies", "mentor_id", "mentors")
    ref("mentor_competencies", "competency_id", "competencies")
    ref("sites", "school_id", "schools")
    ref("site_competencies", "site_id", "sites")
    ref("site_competencies", "competency_id", "competencies")
    ref("site_sessions", "site_id", "sites")
    ref("program_competencies", "program_id", "programs")
    ref("program_competencies", "competency_id", "competencies")
    ref("program_sessions", "program_id", "programs")
    for name, cols in (("diagnostics", ["teacher_id", "competency_id"]),
                       ("mentor_competencies", ["mentor_id", "competency_id"]),
                       ("site_competencies", ["site_id", "competency_id"]),
                       ("program_competencies", ["program_id", "competency_id"])):
        d = b[name][b[name].duplicated(cols)]
        for r in d.to_dict("records"):
            out.append(f"{name}.csv: duplicate pair {tuple(r[c] for c in cols)}")

    for name, cols in NUMERIC.items():
        for c in cols:
            for n, v in enumerate(b[name][c], start=2):
                if not np.isfinite(v):
                    out.append(f"{name}.csv row {n}: {c} is not a number"
                               + (" (0/1)" if (name, c) in FLAGS else ""))
                elif v < 0 and c not in ("lat", "lon"):
                    out.append(f"{name}.csv row {n}: {c} is negative")
    for n, v in enumerate(b["diagnostics"]["score"], start=2):
        if np.isfinite(v) and not 0 <= v <= 100:
            out.append(f"diagnostics.csv row {n}: score {v} outside 0..100")
    for name in ("mentor_competencies", "site_competencies", "program_competencies"):
        for n, v in enumerate(b[name]["weight"], start=2):
            if np.isfinite(v) and not 0 < v <= 1:
                out.append(f"{name}.csv row {n}: weight {v} outside (0, 1]")
    for n, v in enumerate(b["teachers"]["role"], start=2):
        if v not in ("teacher", "manager"):
            out.append(f"teachers.csv row {n}: role {v!r}")
    fmt = {}
    for n, r in enumerate(b["programs"].to_dict("records"), start=2):
        fmt[r["program_id"]] = r["format"]
        if r["format"] not in ("online", "offline"):
            out.append(f"programs.csv row {n}: format {r['format']!r}")
    for name in ("site_sessions", "program_sessions"):
        for n, r in enumerate(b[name].to_dict("records"), start=2):
            s, e = _date(r["start"]), _date(r["end"])
            if s is None or e is None:
                out.append(f"{name}.csv row {n}: dates not ISO")
                continue
            if s > e:
                out.append(f"{name}.csv row {n}: start > end")
            if ps and pe and (s < ps or e > pe):
                out.append(f"{name}.csv row {n}: session outside the period")
    for n, r in enumerate(b["program_sessions"].to_dict("records"), start=2):
        f = fmt.get(r["program_id"])
        if f == "online" and r["municipality_id"] != "":
            out.append(f"program_sessions.csv row {n}: online session with a municipality")
        if f == "offline":
            if r["municipality_id"] == "":
                out.append(f"program_sessions.csv row {n}: offline session without municipality")
            elif r["municipality_id"] not in ids["municipalities"]:
                out.append(f"program_sessions.csv row {n}: unknown municipality "
                           f"{r['municipality_id']!r}")
    bud = b["budgets"]
    if (bud["scope"] == "region").sum() != 1:
        out.append("budgets.csv: not exactly one region row")
    for n, r in enumerate(bud.to_dict("records"), start=2):
        if r["scope"] not in ("region", "municipality"):
            out.append(f"budgets.csv row {n}: scope {r['scope']!r}")
        if r["scope"] == "municipality" and r["scope_id"] not in ids["municipalities"]:
            out.append(f"budgets.csv row {n}: unknown municipality {r['scope_id']!r}")
    d = bud[bud["scope"] == "municipality"]["scope_id"]
    for v in d[d.duplicated()]:
        out.append(f"budgets.csv: duplicate municipality row {v}")
    return out


# --------------------------------------------------------------------------------------
# Random bundles
# --------------------------------------------------------------------------------------

_TOWNS = ["Верхнеборск", "Красноозёрск", "Сосновка", "Малые Ключи", "Заречье", "Ивановское",
          "Светлогорье", "Старая Ладога", "Ольховка", "Каменка", "Луговое", "Берёзовка"]


def _ids(rng, n: int, style: str) -> list[str]:
    """n unique random ids; numeric-looking ones keep leading zeros (must stay strings)."""
    nums = rng.choice(np.arange(1, 9999), size=n, replace=False)
    if style == "zero":
        return [f"0{x:04d}" for x in nums]
    return [f"{style}{x}" for x in nums]


def random_bundle(seed: int, out_dir, *, teachers: int = 10, schools: int = 5,
                  municipalities: int = 4, competencies: int = 5, mentors: int = 4,
                  sites: int = 3, sessions_per_site: int = 2, programs: int = 4,
                  sessions_per_program: int = 2, diag_density: float = 0.5,
                  tight: float = 0.5, unreachable: bool | None = None,
                  window_days: int = 45) -> Path:
    """Write a small random valid bundle (SPEC §2) to ``out_dir`` and return its path.

    ``tight`` in [0, 1]: higher means smaller capacities, seats, budgets, vouchers and hours.
    ``unreachable``: force (True) / forbid (False) a municipality with no roads; None: random.
    Session dates fall inside a ``window_days`` window of the period so they overlap."""
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tight = float(min(1.0, max(0.0, tight)))

    def money(lo, hi, step=100):
        return int(rng.integers(lo // step, hi // step + 1)) * step

    year = int(rng.integers(2024, 2028))
    ps = dt.date(year, 9, 1) + dt.timedelta(days=int(rng.integers(0, 20)))
    pe = ps + dt.timedelta(days=int(rng.integers(120, 270)))
    region = {"name": f"Тестовая область {seed}", "period_start": ps.isoformat(),
              "period_end": pe.isoformat()}
    span = (pe - ps).days
    w0 = int(rng.integers(0, max(1, span - window_days)))

    def dates():
        s = w0 + int(rng.integers(0, max(1, window_days - 7)))
        ln = int(rng.integers(0, 7))
        s = min(s, span)
        e = min(s + ln, span)
        return ((ps + dt.timedelta(days=s)).isoformat(), (ps + dt.timedelta(days=e)).isoformat())

    comp_ids = _ids(rng, competencies, "K")
    comp = pd.DataFrame({"competency_id": comp_ids,
                         "name": [f"Компетенция {c}" for c in comp_ids],
                         "group": [f"G{int(rng.integers(1, 4))}" for _ in comp_ids]})

    mun_ids = _ids(rng, municipalities, "mo-")
    mun = pd.DataFrame({"municipality_id": mun_ids,
                        "name": [_TOWNS[i % len(_TOWNS)] + ("" if i < len(_TOWNS) else f" {i}")
                                 for i in range(municipalities)],
                        "lat": np.round(rng.uniform(50, 60, municipalities), 4),
                        "lon": np.round(rng.uniform(30, 50, municipalities), 4)})
    if unreachable is None:
        unreachable = municipalities >= 3 and rng.random() < 0.5
    connected = mun_ids[:-1] if (unreachable and municipalities >= 2) else mun_ids
    roads = []
    for i in range(1, len(connected)):  # random tree
        j = int(rng.integers(0, i))
        roads.append((connected[j], connected[i], int(rng.integers(15, 170))))
    existing = {frozenset(r[:2]) for r in roads}
    for _ in range(len(connected) // 2):  # a few extra edges (shortcuts or long ways round)
        a, c = rng.choice(len(connected), size=2, replace=False) if len(connected) > 1 else (0, 0)
        key = frozenset((connected[a], connected[c]))
        if a != c and key not in existing:
            existing.add(key)
            roads.append((connected[a], connected[c], int(rng.integers(20, 260))))
    road = pd.DataFrame(roads, columns=FILES["roads"])

    sch_ids = _ids(rng, schools, "sch")
    sch_mun = [mun_ids[i % municipalities] if i < municipalities else
               mun_ids[int(rng.integers(0, municipalities))] for i in range(schools)]
    sch = pd.DataFrame({"school_id": sch_ids, "name": [f"Школа №{i + 1}" for i in range(schools)],
                        "municipality_id": sch_mun,
                        "low_results": (rng.random(schools) < 0.35).astype(int)})

    t_ids = _ids(rng, teachers, "zero")
    vouch = []
    for _ in range(teachers):
        vouch.append(0 if rng.random() < 0.15 else money(2000, int(60000 * (1.2 - tight))))
    tea = pd.DataFrame({"teacher_id": t_ids,
                        "school_id": [sch_ids[int(rng.integers(0, schools))] for _ in t_ids],
                        "role": np.where(rng.random(teachers) < 0.2, "manager", "teacher"),
                        "voucher_rub": vouch,
                        "max_hours": [int(rng.integers(6, int(40 + 100 * (1 - tight)))) for _ in t_ids]})

    diag = []
    for t in t_ids:
        for c in comp_ids:
            if rng.random() < diag_density:
                diag.append((t, c, int(rng.integers(0, 101))))
    dia = pd.DataFrame(diag, columns=FILES["diagnostics"])

    def weights(owner_ids, key):
        rows = []
        for o in owner_ids:
            k = int(rng.integers(1, min(3, competencies) + 1))
            for c in rng.choice(comp_ids, size=k, replace=False):
                rows.append((o, c, float(round(rng.uniform(0.05, 1.0), 2))))
        return pd.DataFrame(rows, columns=[key, "competency_id", "weight"])

    capmax = max(1, round(1 + 3 * (1 - tight)))
    m_ids = _ids(rng, mentors, "mnt")
    mrows = []
    for m in m_ids:
        if rng.random() < 0.5 and teachers:
            t = t_ids[int(rng.integers(0, teachers))]
            own, school = t, tea.loc[tea.teacher_id == t, "school_id"].iloc[0]
        else:
            own, school = "", sch_ids[int(rng.integers(0, schools))]
        mrows.append((m, own, school, int(rng.integers(1, capmax + 1)), int(rng.random() < 0.4),
                      money(2000, 25000), int(rng.integers(4, 37))))
    men = pd.DataFrame(mrows, columns=FILES["mentors"])
    mco = weights(m_ids, "mentor_id")

    s_ids = _ids(rng, sites, "pl")
    sit = pd.DataFrame({"site_id": s_ids,
                        "school_id": [sch_ids[int(rng.integers(0, schools))] for _ in s_ids],
                        "name": [f"Стажировочная площадка {i + 1}" for i in range(sites)]})
    sco = weights(s_ids, "site_id")
    n_ss = sites * sessions_per_site
    sess_ids = _ids(rng, n_ss + programs * sessions_per_program, "s")
    ss = []
    for i, s in enumerate(s_ids):
        for j in range(sessions_per_site):
            a, e = dates()
            ss.append((sess_ids[i * sessions_per_site + j], s, a, e,
                       int(rng.integers(1, capmax + 2)), int(rng.integers(4, 41)),
                       money(1000, 30000)))
    sse = pd.DataFrame(ss, columns=FILES["site_sessions"])

    p_ids = _ids(rng, programs, "dpp")
    fmts = ["online" if rng.random() < 0.4 else "offline" for _ in p_ids]
    prg = pd.DataFrame({"program_id": p_ids,
                        "registry_id": [f"ФР-{int(rng.integers(10000, 99999))}" for _ in p_ids],
                        "provider": [f"Провайдер {int(rng.integers(1, 5))}" for _ in p_ids],
                        "name": [f"Программа {i + 1}" for i in range(programs)],
                        "format": fmts,
                        "hours": [int(rng.integers(6, 73)) for _ in p_ids],
                        "price_rub": [0 if rng.random() < 0.1 else money(1000, 40000) for _ in p_ids]})
    pco = weights(p_ids, "program_id")
    pss = []
    k = n_ss
    for i, pid in enumerate(p_ids):
        for j in range(sessions_per_program):
            a, e = dates()
            mu = "" if fmts[i] == "online" else mun_ids[int(rng.integers(0, municipalities))]
            pss.append((sess_ids[k], pid, a, e, int(rng.integers(1, capmax + 3)), mu))
            k += 1
    pse = pd.DataFrame(pss, columns=FILES["program_sessions"])

    potential = int((men.capacity * men.stipend_rub).sum() + (sse.seats * sse.cost_rub).sum())
    frac = float(rng.uniform(0.15, 0.45)) * (1.3 - tight)
    bud = [("region", "", max(0, int(potential * frac) // 100 * 100))]
    for m in mun_ids:
        if rng.random() < 0.5:
            bud.append(("municipality", m, money(0, max(100, int(potential * frac * 0.6)))))
    bgt = pd.DataFrame(bud, columns=FILES["budgets"])

    frames = {"competencies": comp, "municipalities": mun, "roads": road, "schools": sch,
              "teachers": tea, "diagnostics": dia, "mentors": men, "mentor_competencies": mco,
              "sites": sit, "site_competencies": sco, "site_sessions": sse, "programs": prg,
              "program_competencies": pco, "program_sessions": pse, "budgets": bgt}
    for name, df in frames.items():
        df = df[FILES[name]]
        df.to_csv(out / f"{name}.csv", index=False, encoding="utf-8")
    (out / "region.json").write_text(json.dumps(region, ensure_ascii=False, indent=1),
                                     encoding="utf-8")
    return out
