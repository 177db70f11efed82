"""The plan (SPEC §6): assignments, routes, summary, clusters, as frames and as files.

Every figure written is computed from the written assignments: the objective is recomputed by
the formula of SPEC §5 from the assignment rows, not taken from the solver.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .fairness import fairness_dict, left_out_rows
from .clustering import DeficitProfiles, deficit_matrix, profile_table, short_competency_names
from .options import INTERNSHIP, MENTOR
from .params import KINDS, Params
from .region import RegionData, date_of
from .solver.solve import Result
from .solver.bound import relative_gap

ASSIGNMENT_COLUMNS = ["teacher_id", "kind", "resource_id", "start", "end", "hours", "cost_rub", "funded_by"]


@dataclass
class Profiles:
    labels: np.ndarray
    table: list[dict]


def deficit_profiles(region: RegionData, params: Params, random_state: int = 0) -> Profiles:
    """Clusters teachers by their skill gaps (no priority weight) and names each profile."""
    deficits = deficit_matrix(region.teachers.scores, params.deficit_threshold)
    model = DeficitProfiles(random_state=random_state).fit(deficits)
    short = short_competency_names(list(region.competencies.names),
                                   list(region.competencies.short_names) if region.competencies.short_names else None)
    return Profiles(np.asarray(model.labels_), profile_table(model, list(region.competencies.ids), short))


def assignments_frame(result: Result) -> pd.DataFrame:
    inst = result.instance
    region, acts = inst.region, result.activities
    plan = result.plan
    t, a = plan.teacher, plan.activity
    kind = acts.kind[a]
    municipality = region.teacher_municipality[t]
    funded = np.where(kind == 2, "voucher",
                      np.char.add("municipality:", np.asarray(region.municipalities.ids, dtype=object)[municipality]
                                  .astype(str)))
    frame = pd.DataFrame({
        "teacher_id": np.asarray(region.teachers.ids, dtype=object)[t],
        "kind": np.asarray(KINDS, dtype=object)[kind],
        "resource_id": np.asarray(acts.ids, dtype=object)[a],
        "start": [date_of(d).isoformat() for d in acts.start[a]],
        "end": [date_of(d).isoformat() for d in acts.end[a]],
        "hours": [_number(h) for h in acts.hours[a]],
        "cost_rub": acts.cost_rub[a].astype(np.int64),
        "funded_by": funded,
    })
    frame["_teacher"], frame["_activity"] = t, a
    return frame.sort_values(["teacher_id", "start", "kind", "resource_id"], kind="stable").reset_index(drop=True)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 4)


def routes_frame(result: Result, assignments: pd.DataFrame) -> pd.DataFrame:
    inst = result.instance
    region, acts = inst.region, result.activities
    need = inst.need
    t = assignments["_teacher"].to_numpy(int)
    a = assignments["_activity"].to_numpy(int)
    cover = np.zeros_like(need)
    np.add.at(cover, t, acts.weights[a])
    covered = (need * np.minimum(1.0, cover)).sum(axis=1)
    ids = region.competencies.ids
    addresses = [";".join(ids[c] for c in np.flatnonzero((acts.weights[ai] > 0) & (need[ti] > 0)))
                 for ti, ai in zip(t, a)]
    names = _activity_names(region, acts)
    routes = assignments[ASSIGNMENT_COLUMNS].copy()
    routes.insert(1, "step", assignments.groupby("teacher_id").cumcount() + 1)
    routes.insert(4, "name", [names[i] for i in a])
    routes["addresses"] = addresses
    routes["need_total"] = np.round(need.sum(axis=1)[t], 6)
    routes["need_covered"] = np.round(covered[t], 6)
    routes["need_after"] = np.round(need.sum(axis=1)[t] - covered[t], 6)
    return routes


def _activity_names(region: RegionData, acts) -> list[str]:
    names = []
    for i in range(len(acts)):
        local = int(acts.local[i])
        if acts.kind[i] == MENTOR:
            names.append(f"Наставник {acts.ids[i]} ({region.schools.names[acts.school[i]]})")
        elif acts.kind[i] == INTERNSHIP:
            names.append(region.sites.names[region.site_sessions.site[local]])
        else:
            names.append(region.programs.names[region.program_sessions.program[local]])
    return names


def recomputed_objective(result: Result, assignments: pd.DataFrame) -> float:
    """SPEC §5 from the assignment rows (ids looked up afresh), not from the solver's vector."""
    inst = result.instance
    region = inst.region
    t = assignments["teacher_id"].map(region.teachers.index).to_numpy(int)
    acts = result.activities
    a = np.array([acts.lookup(k, r) for k, r in zip(assignments["kind"], assignments["resource_id"])], dtype=int)
    cover = np.zeros_like(inst.need)
    np.add.at(cover, t, acts.weights[a])
    return float((inst.need * np.minimum(1.0, cover)).sum()
                 - assignments["cost_rub"].astype(float).sum() / inst.params.rub_per_point)


def summary_dict(result: Result, assignments: pd.DataFrame, profiles: Profiles | None,
                 left_out: pd.DataFrame | None = None) -> dict:
    inst = result.instance
    region, acts, params = inst.region, result.activities, inst.params
    objective = recomputed_objective(result, assignments)
    bound = max(result.bound, objective)
    t = assignments["_teacher"].to_numpy(int)
    a = assignments["_activity"].to_numpy(int)
    need_total = float(inst.need.sum())
    cover = np.zeros_like(inst.need)
    np.add.at(cover, t, acts.weights[a])
    need_covered = float((inst.need * np.minimum(1.0, cover)).sum())
    kind = acts.kind[a]
    municipality = region.teacher_municipality[t]
    spent_municipal = np.bincount(municipality, weights=acts.budget_rub[a], minlength=len(region.municipalities))
    used = np.bincount(a, minlength=len(acts))
    offsets = acts.offsets

    def capacity_use(k: int) -> dict:
        lo, hi = offsets[k], offsets[k + 1]
        return {"used": int(used[lo:hi].sum()), "capacity": int(acts.capacity[lo:hi].sum()),
                "resources_full": int((used[lo:hi] >= acts.capacity[lo:hi]).sum()), "resources": hi - lo}

    per_competency = {}
    for c, cid in enumerate(region.competencies.ids):
        total = float(inst.need[:, c].sum())
        covered = float((inst.need[:, c] * np.minimum(1.0, cover[:, c])).sum())
        per_competency[cid] = {"need": round(total, 6), "covered": round(covered, 6)}
    budgets = region.budgets.municipality_rub
    summary = {
        "status": result.status,
        "objective": objective,
        "bound": bound,
        "gap": max(0.0, relative_gap(objective, bound)),
        "solve_seconds": round(result.solve_seconds, 3),
        "region": region.name,
        "period": [region.period_start.isoformat(), region.period_end.isoformat()],
        "need_total": need_total,
        "need_covered": need_covered,
        "need_covered_share": need_covered / need_total if need_total else 1.0,
        "teachers": len(region.teachers),
        "teachers_with_need": int((inst.need.sum(axis=1) > 0).sum()),
        "teachers_reached": int(len(np.unique(t))),
        "assignments": {k: int((kind == i).sum()) for i, k in enumerate(KINDS)},
        "cost_total_rub": int(assignments["cost_rub"].sum()),
        "spending": {
            "voucher_rub": int(acts.voucher_rub[a].sum()),
            "municipalities_rub": int(spent_municipal.sum()),
            "region_budget_rub": int(region.budgets.region_rub),
            "by_municipality": {
                region.municipalities.ids[m]: {"spent_rub": int(spent_municipal[m]),
                                               "budget_rub": None if budgets[m] < 0 else int(budgets[m])}
                for m in range(len(region.municipalities)) if spent_municipal[m] > 0 or budgets[m] >= 0
            },
        },
        "capacity_use": {"mentor": capacity_use(0), "internship": capacity_use(1), "program": capacity_use(2)},
        "need_by_competency": per_competency,
        "params": params.model_dump(mode="json", exclude={"pinned", "forbidden"})
        | {"pinned": len(params.pinned), "forbidden": len(params.forbidden)},
        "statistics": _json_safe(result.statistics),
        "progress_history": [_json_safe({"elapsed": round(e.elapsed, 3), "objective": e.objective,
                                         "bound": e.bound, "phase": e.phase}) for e in result.history],
        "profiles": profiles.table if profiles else [],
        "fairness": fairness_dict(region, params, inst.need, cover, t, floor=result.statistics.get("floor"),
                                  left_out=left_out),
    }
    return summary


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def clusters_frame(region: RegionData, profiles: Profiles) -> pd.DataFrame:
    names = {p["cluster"]: p["name"] for p in profiles.table}
    return pd.DataFrame({"teacher_id": list(region.teachers.ids), "cluster": profiles.labels.astype(int),
                         "profile": [names.get(int(c), "") for c in profiles.labels]})


@dataclass
class PlanFiles:
    assignments: pd.DataFrame
    routes: pd.DataFrame
    summary: dict
    clusters: pd.DataFrame
    explanation: object | None = None  # engine.explain.Explanation: why each need is covered or not
    left_out: pd.DataFrame | None = None  # teachers with need and no assignment, with reasons (engine.fairness)
    region: RegionData | None = None  # the region planned (for the names in plan.xlsx)
    params: Params | None = None


def plan_files(result: Result, profiles: Profiles) -> PlanFiles:
    from .explain import explain_result

    assignments = assignments_frame(result)
    explanation = explain_result(result)
    inst = result.instance
    left_out = left_out_rows(inst.region, inst.params, inst.need, assignments["_teacher"].to_numpy(int),
                             explanation.uncovered)
    return PlanFiles(assignments[ASSIGNMENT_COLUMNS], routes_frame(result, assignments),
                     summary_dict(result, assignments, profiles, left_out),
                     clusters_frame(result.instance.region, profiles), explanation, left_out,
                     result.instance.region, result.instance.params)


def write_plan(files: PlanFiles, out_dir: str | Path) -> Path:
    """Writes assignments.csv, routes.csv, summary.json, clusters.csv and plan.xlsx; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files.assignments.to_csv(out / "assignments.csv", index=False, lineterminator="\n")
    files.routes.to_csv(out / "routes.csv", index=False, lineterminator="\n")
    files.clusters.to_csv(out / "clusters.csv", index=False, lineterminator="\n")
    (out / "summary.json").write_text(json.dumps(files.summary, ensure_ascii=False, indent=2), encoding="utf-8")
    write_workbook(files, out / "plan.xlsx")
    if files.explanation is not None:
        from .explain import write_explanation

        write_explanation(files.explanation, out)
    return out


def write_workbook(files: PlanFiles, path: Path) -> None:
    """plan.xlsx, the planner's workbook (engine/workbook.py), from the plan's own rows."""
    from .plan_view import plan_view
    from .workbook import WorkbookContext, write_workbook

    view = plan_view(files.region, files.params, files.assignments)
    extra = {} if files.left_out is None else {"left_out": files.left_out}
    write_workbook(WorkbookContext(view, files.summary, files.explanation, files.clusters, extra), path)
