"""Independent oracle for nations (SPEC §7), written from the SPEC; it does not import the engine.

* ``random_nation(seed, out_dir, ...)``      a small random valid nation (regions from oracle.random_bundle)
* ``nation_exact_optimum(nation, params)``   the national optimum by one exact MILP over every region
* ``check_nation_plan(nation, params, out)`` every violated rule (§4 per region, 11-13 across) and
                                             every wrong figure of the output folder
* ``nation_objective(nation, params, out)``  the national objective of an output folder (SPEC §5 / §7)

A federal session is modelled as what rule 11 says it is: a program session of its region (online:
of every region; offline: of its own region only), free for the voucher and budgets, with the
seats, the federal budget and the quotas as rows across regions.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

import oracle
from oracle import Act, BundleIndex, full_params, random_bundle

FEDERAL_FILES = {
    "regions": ["region_id", "name", "folder"],
    "federal_programs": ["program_id", "registry_id", "provider", "name", "format", "hours", "price_rub"],
    "federal_program_competencies": ["program_id", "competency_id", "weight"],
    "federal_program_sessions": ["session_id", "program_id", "start", "end", "seats", "region_id", "municipality_id"],
    "federal_budget": ["scope", "scope_id", "amount_rub"],
}
NATION_PERIOD = (dt.date(2026, 9, 1), dt.date(2027, 6, 30))


# --------------------------------------------------------------------------------------
# A random nation
# --------------------------------------------------------------------------------------

def _shift_dates(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    for col in ("start", "end"):
        frame[col] = [(dt.date.fromisoformat(v) + dt.timedelta(days=days)).isoformat() for v in frame[col]]
    return frame


def random_nation(seed: int, out_dir, *, regions: int = 3, teachers: int = 6, federal_programs: int = 3,
                  sessions_per_program: int = 2, tight: float = 0.6, competencies: int = 4) -> Path:
    """Regions by oracle.random_bundle, moved onto one period and one competency list; a random federal layer."""
    rng = np.random.default_rng(10_000 + seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    comp_ids = [f"C{i + 1}" for i in range(competencies)]
    region_rows, region_munis = [], {}
    for r in range(regions):
        rid = f"R{r + 1:02d}"
        folder = out / "regions" / rid
        random_bundle(seed * 100 + r, folder, teachers=teachers, schools=3, municipalities=3,
                      competencies=competencies, mentors=2, sites=2, programs=2, tight=tight)
        meta = json.loads((folder / "region.json").read_text(encoding="utf-8"))
        shift = (NATION_PERIOD[0] - dt.date.fromisoformat(meta["period_start"])).days
        meta.update(period_start=NATION_PERIOD[0].isoformat(), period_end=NATION_PERIOD[1].isoformat())
        (folder / "region.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tables = {n: pd.read_csv(folder / f"{n}.csv", dtype=str, keep_default_na=False) for n in oracle.FILES}
        rename = dict(zip(tables["competencies"]["competency_id"], comp_ids))
        for n in ("competencies", "diagnostics", "mentor_competencies", "site_competencies", "program_competencies"):
            tables[n]["competency_id"] = tables[n]["competency_id"].map(rename)
        for n in ("site_sessions", "program_sessions"):
            tables[n] = _shift_dates(tables[n], shift)
        for n, frame in tables.items():
            frame.to_csv(folder / f"{n}.csv", index=False)
        region_rows.append((rid, f"Регион {r + 1}", f"regions/{rid}"))
        region_munis[rid] = list(tables["municipalities"]["municipality_id"])
    programs, links, sessions = [], [], []
    span = (NATION_PERIOD[1] - NATION_PERIOD[0]).days
    for p in range(federal_programs):
        pid = f"FP{p + 1}"
        fmt = "online" if rng.random() < 0.5 else "offline"
        price = int(rng.integers(5, 60)) * 1000
        programs.append((pid, f"ФР-Ф-{seed}-{p}", "Академия Минпросвещения", f"Федеральная программа {p + 1}", fmt,
                         int(rng.choice([16, 36, 72])), price))
        for c in rng.choice(comp_ids, size=int(rng.integers(1, 3)), replace=False):
            links.append((pid, c, round(float(rng.uniform(0.3, 1.0)), 2)))
        for s in range(sessions_per_program):
            start = int(rng.integers(0, span - 10))
            dates = ((NATION_PERIOD[0] + dt.timedelta(days=start)).isoformat(),
                     (NATION_PERIOD[0] + dt.timedelta(days=start + int(rng.integers(0, 6)))).isoformat())
            if fmt == "online":
                where = ("", "")
            else:
                rid = region_rows[int(rng.integers(0, regions))][0]
                where = (rid, region_munis[rid][int(rng.integers(0, len(region_munis[rid])))])
            sessions.append((f"FS{p + 1}-{s + 1}", pid, *dates, int(rng.integers(1, 4)), *where))
    total_price = sum(pr[6] for pr in programs)
    budget = [("federal", "", int(total_price * rng.uniform(0.6, 1.5)) // 100 * 100)]
    for rid, _, _ in region_rows:
        if rng.random() < 0.5:
            budget.append(("region", rid, int(total_price * rng.uniform(0.2, 0.8)) // 100 * 100))
    tables = {"regions": region_rows, "federal_programs": programs, "federal_program_competencies": links,
              "federal_program_sessions": sessions, "federal_budget": budget}
    for name, rows in tables.items():
        pd.DataFrame(rows, columns=FEDERAL_FILES[name]).to_csv(out / f"{name}.csv", index=False)
    (out / "nation.json").write_text(json.dumps({"name": f"Страна {seed}", "period_start": NATION_PERIOD[0].isoformat(),
                                                 "period_end": NATION_PERIOD[1].isoformat()}, ensure_ascii=False),
                                     encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------
# Reading a nation and its federal activities
# --------------------------------------------------------------------------------------

class NationIndex:
    def __init__(self, nation_dir):
        root = Path(nation_dir)
        read = {n: pd.read_csv(root / f"{n}.csv", dtype=str, keep_default_na=False) for n in FEDERAL_FILES}
        self.region_ids = list(read["regions"]["region_id"])
        self.regions = {r: BundleIndex(root / f) for r, f in zip(read["regions"]["region_id"], read["regions"]["folder"])}
        programs = {r["program_id"]: r for r in read["federal_programs"].to_dict("records")}
        weights = defaultdict(dict)
        for r in read["federal_program_competencies"].to_dict("records"):
            weights[r["program_id"]][r["competency_id"]] = float(r["weight"])
        self.federal: dict[str, Act] = {}
        self.session_region: dict[str, str] = {}
        for s in read["federal_program_sessions"].to_dict("records"):
            prog = programs[s["program_id"]]
            online = prog["format"] == "online"
            self.federal[s["session_id"]] = Act(
                "program", s["session_id"], dt.date.fromisoformat(s["start"]), dt.date.fromisoformat(s["end"]),
                not online, float(prog["hours"]), float(prog["price_rub"]), None if online else s["municipality_id"],
                ("federal", s["program_id"]), tuple(sorted(weights[s["program_id"]].items())), float(s["seats"]), "", "")
            self.session_region[s["session_id"]] = s["region_id"]
        self.budget = math.inf
        self.quota: dict[str, float] = {}
        for b in read["federal_budget"].to_dict("records"):
            if b["scope"] == "federal":
                self.budget = float(b["amount_rub"])
            else:
                self.quota[b["scope_id"]] = float(b["amount_rub"])

    def federal_for(self, region_id: str) -> dict[str, Act]:
        """Rule 11: online sessions for everyone, offline ones for their own region only."""
        return {s: a for s, a in self.federal.items() if self.session_region[s] in ("", region_id)}


def _nation(nation) -> NationIndex:
    return nation if isinstance(nation, NationIndex) else NationIndex(nation)


def region_params(params: dict | None, region_id: str) -> dict:
    p = dict(params or {})
    for key in ("pinned", "forbidden"):
        p[key] = [{k: v for k, v in e.items() if k != "region_id"} for e in p.get(key, [])
                  if e.get("region_id") == region_id]
    return full_params(p)


# --------------------------------------------------------------------------------------
# The national optimum (one MILP over all regions)
# --------------------------------------------------------------------------------------

def nation_exact_optimum(nation, params=None, time_limit: float = 120) -> float:
    nx = _nation(nation)
    xs: list[tuple[str, str, Act, bool]] = []  # region, teacher, activity, federal
    needs: dict[tuple[str, str, str], float] = {}
    for rid in nx.region_ids:
        ix, p = nx.regions[rid], region_params(params, rid)
        forbidden = {oracle._triple(e) for e in p["forbidden"]}
        acts = [(a, False) for a in ix.acts.values()] + [(a, True) for a in nx.federal_for(rid).values()]
        for t, te in ix.teachers.items():
            for act, fed in acts:
                if (t, act.kind, act.rid) in forbidden or ix.pair_problems(t, act, p):
                    continue
                if act.hours > float(te["max_hours"]) + 1e-9:
                    continue
                if not fed and act.kind == "program" and act.cost > float(te["voucher_rub"]) + 1e-9:
                    continue
                xs.append((rid, t, act, fed))
        for (t, c), n in oracle.need_table(ix, p).items():
            needs[(rid, t, c)] = n
    pinned = {(rid, *oracle._triple(e)) for rid in nx.region_ids for e in region_params(params, rid)["pinned"]}
    xpos = {(r, t, a.kind, a.rid): i for i, (r, t, a, _) in enumerate(xs)}
    missing = pinned - set(xpos)
    if missing:
        raise oracle.Infeasible(f"pinned {sorted(missing)[0]} is not allowed")
    ys, ypos = [], {}
    for r, t, a, _ in xs:
        for c, w in a.weights:
            if (r, t, c) in needs and (r, t, c) not in ypos:
                ypos[(r, t, c)] = len(xs) + len(ys)
                ys.append((r, t, c))
    nvar = len(xs) + len(ys)
    if nvar == 0:
        return 0.0
    cvec = np.zeros(nvar)
    for i, (r, t, a, _) in enumerate(xs):
        cvec[i] = a.cost / float(region_params(params, r)["rub_per_point"])
    for j, key in enumerate(ys):
        cvec[len(xs) + j] = -needs[key]
    R, C, V, lo, hi = [], [], [], [], []

    def row(entries, ub, lb=-np.inf):
        k = len(lo)
        for col, val in entries:
            R.append(k), C.append(col), V.append(val)
        lo.append(lb), hi.append(ub)

    by_t, by_res = defaultdict(list), defaultdict(list)
    for i, (r, t, a, fed) in enumerate(xs):
        by_t[(r, t)].append(i)
        by_res[("federal", a.rid) if fed else (r, a.kind, a.rid)].append(i)
    for key, idx in by_res.items():  # rules 1 and 12
        row([(i, 1.0) for i in idx], xs[idx[0]][2].cap)
    for (r, t), idx in by_t.items():
        p, te = region_params(params, r), nx.regions[r].teachers[t]
        limits = {"mentor": 1.0, "internship": float(p["max_internships"]), "program": float(p["max_programs"])}
        for k, lim in limits.items():  # rule 2 (federal sessions count as programs)
            row([(i, 1.0) for i in idx if xs[i][2].kind == k], lim)
        groups = defaultdict(list)
        for i in idx:
            if xs[i][2].group is not None:
                groups[xs[i][2].group].append(i)
        for g in groups.values():
            if len(g) > 1:
                row([(i, 1.0) for i in g], 1.0)
        dated = [i for i in idx if xs[i][2].dated]
        for i, j in itertools.combinations(dated, 2):  # rule 6
            if oracle._overlap(xs[i][2], xs[j][2]):
                row([(i, 1.0), (j, 1.0)], 1.0)
        row([(i, xs[i][2].hours) for i in idx], float(te["max_hours"]))  # rule 7
        row([(i, xs[i][2].cost) for i in idx if xs[i][2].kind == "program" and not xs[i][3]],
            float(te["voucher_rub"]))  # rule 8 (federal: free)
    for r in nx.region_ids:  # rule 9 within each region
        ix = nx.regions[r]
        paid = [i for i, (rr, t, a, fed) in enumerate(xs) if rr == r and a.kind in ("mentor", "internship")]
        for m, amount in ix.muni_budget.items():
            row([(i, xs[i][2].cost) for i in paid if ix.teachers[xs[i][1]]["muni"] == m], amount)
        if math.isfinite(ix.region_budget):
            row([(i, xs[i][2].cost) for i in paid], ix.region_budget)
    federal = [i for i, x in enumerate(xs) if x[3]]
    if math.isfinite(nx.budget):  # rule 13
        row([(i, xs[i][2].cost) for i in federal], nx.budget)
    for r, amount in nx.quota.items():
        row([(i, xs[i][2].cost) for i in federal if xs[i][0] == r], amount)
    for (r, t, c), col in ypos.items():
        entries = [(col, 1.0)]
        for i in by_t[(r, t)]:
            w = dict(xs[i][2].weights).get(c, 0.0)
            if w > 0:
                entries.append((i, -w))
        row(entries, 0.0)
    lb, ub = np.zeros(nvar), np.ones(nvar)
    for key in pinned:
        lb[xpos[key]] = 1.0
    integrality = np.zeros(nvar)
    integrality[:len(xs)] = 1
    A = coo_matrix((V, (R, C)), shape=(len(lo), nvar)).tocsr()
    res = milp(cvec, constraints=[LinearConstraint(A, np.array(lo), np.array(hi))], integrality=integrality,
               bounds=Bounds(lb, ub), options={"mip_rel_gap": 1e-9, "time_limit": float(time_limit), "disp": False})
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"HiGHS did not prove optimality: {res.message}")
    return float(-res.fun)


# --------------------------------------------------------------------------------------
# Checking an output folder
# --------------------------------------------------------------------------------------

def _augmented(ix: BundleIndex, federal: dict[str, Act]) -> BundleIndex:
    """The region with its federal sessions as free program sessions (rule 11), for oracle.check_plan."""
    out = BundleIndex.__new__(BundleIndex)
    out.__dict__.update(ix.__dict__)
    out.acts = dict(ix.acts)
    for sid, act in federal.items():
        out.acts[("program", sid)] = dataclasses.replace(act, cost=0.0)
    return out


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def nation_objective(nation, params, out_dir) -> float:
    nx, out = _nation(nation), Path(out_dir)
    total = 0.0
    for rid in nx.region_ids:
        total += region_objective(nx, params, rid, _read(out / "regions" / rid / "assignments.csv"))
    return total


def region_objective(nx: NationIndex, params, rid: str, assignments: pd.DataFrame) -> float:
    federal = nx.federal_for(rid)
    aug = _augmented(nx.regions[rid], federal)
    p = region_params(params, rid)
    price = sum(federal[r].cost for r in assignments["resource_id"] if r in federal)
    return oracle.objective(aug, p, _as_free(assignments, federal)) - price / float(p["rub_per_point"])


def _as_free(assignments: pd.DataFrame, federal: dict) -> pd.DataFrame:
    frame = assignments.copy()
    is_fed = frame["resource_id"].isin(list(federal)) & frame["kind"].eq("program")
    frame.loc[is_fed, "cost_rub"] = "0"
    frame.loc[is_fed, "funded_by"] = "voucher"
    return frame


def check_nation_plan(nation, params, out_dir) -> list[str]:
    """Every violation: §4 in each region (federal sessions as rule 11 says), rules 12-13, and the §7 output."""
    nx, out = _nation(nation), Path(out_dir)
    problems: list[str] = []
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    seats, spend, spend_region = defaultdict(int), 0.0, defaultdict(float)
    objectives = {}
    for rid in nx.region_ids:
        folder = out / "regions" / rid
        for f in ("assignments.csv", "routes.csv", "summary.json", "clusters.csv"):
            if not (folder / f).is_file():
                problems.append(f"output: {rid}/{f} missing")
        assignments = _read(folder / "assignments.csv")
        federal = nx.federal_for(rid)
        for row in assignments.to_dict("records"):
            sid = row["resource_id"]
            if sid in nx.federal and row["kind"] == "program":
                if sid not in federal:
                    problems.append(f"federal: {rid}/{row['teacher_id']} takes offline session {sid} of another region")
                    continue
                seats[sid] += 1
                spend += federal[sid].cost
                spend_region[rid] += federal[sid].cost
                if row["funded_by"] != "federal":
                    problems.append(f"output: {rid}/{row['teacher_id']} {sid} funded_by {row['funded_by']} != federal")
                if float(row["cost_rub"]) != federal[sid].cost:
                    problems.append(f"output: {rid}/{row['teacher_id']} {sid} cost_rub {row['cost_rub']}")
        aug = _augmented(nx.regions[rid], federal)
        for v in oracle.check_plan(aug, region_params(params, rid), _as_free(assignments, federal)):
            if not v.startswith("capacity:") or not any(s in v for s in nx.federal):
                problems.append(f"{rid}: {v}")
        objectives[rid] = region_objective(nx, params, rid, assignments)
        region_summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        if abs(region_summary["objective"] - objectives[rid]) > 1e-6 * max(1.0, abs(objectives[rid])):
            problems.append(f"output: {rid} objective {region_summary['objective']} != {objectives[rid]}")
    for sid, used in seats.items():  # rule 12
        if used > nx.federal[sid].cap:
            problems.append(f"rule 12: federal session {sid} has {used} teachers for {nx.federal[sid].cap} seats")
    if spend > nx.budget:  # rule 13
        problems.append(f"rule 13: federal spending {spend} > budget {nx.budget}")
    for rid, amount in nx.quota.items():
        if spend_region[rid] > amount:
            problems.append(f"rule 13: region {rid} federal spending {spend_region[rid]} > quota {amount}")
    total = sum(objectives.values())
    if abs(summary["objective"] - total) > 1e-6 * max(1.0, abs(total)):
        problems.append(f"output: nation objective {summary['objective']} != {total}")
    listed = {r["region_id"]: r for r in summary.get("regions", [])}
    if set(listed) != set(nx.region_ids):
        problems.append("output: summary regions do not list every region")
    if abs(sum(r["objective"] for r in listed.values()) - summary["objective"]) > 1e-6 * max(1.0, abs(total)):
        problems.append("output: region objectives do not sum to the nation's")
    used = {s["session_id"]: s["used"] for s in summary["federal"]["sessions"]}
    for sid in nx.federal:
        if used.get(sid) != seats.get(sid, 0):
            problems.append(f"output: federal session {sid} used {used.get(sid)} != {seats.get(sid, 0)}")
    if summary["federal"]["budget"]["used_rub"] != spend:
        problems.append(f"output: federal budget used {summary['federal']['budget']['used_rub']} != {spend}")
    if summary["bound"] < summary["objective"] - 1e-9:
        problems.append("output: bound below objective")
    gap = (summary["bound"] - summary["objective"]) / max(1.0, abs(summary["bound"]))
    if abs(summary["gap"] - gap) > 1e-9:
        problems.append(f"output: gap {summary['gap']} != {gap}")
    return problems
