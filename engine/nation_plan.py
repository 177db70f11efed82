"""A nation's plan (SPEC §7): summary.json of the nation and a whole §6 plan folder per region.

    nation = load_nation("nation/")
    result = solve_nation(nation, nation_params(None, nation.region_ids))
    write_nation_plan(nation, params, result, "out/")

In a region's folder federal assignments have kind `program`, the federal session id as
`resource_id`, their price as `cost_rub` and `funded_by` `federal`; the region's objective counts
their price; status, bound and gap are the nation's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .nation import FEDERAL, NationData, NationParams, RegionalView, regional_view
from .params import Params
from .nation_solve import Column, NationResult
from .plan import ASSIGNMENT_COLUMNS, PlanFiles, _json_safe, assignments_frame, clusters_frame, deficit_profiles, \
    routes_frame, summary_dict, write_plan
from .solver.instance import Instance
from .solver.bound import relative_gap
from .solver.solve import Result


def region_plan_files(nation: NationData, params: NationParams, result: NationResult, r: int) -> PlanFiles:
    region_id = nation.region_ids[r]
    view = regional_view(nation, r)
    return view_plan_files(view, nation.federal.session_price[view.federal_session], params.for_region(region_id),
                           result.columns[r], NationOutcome.of(result), region_id, nation.name)


@dataclass(frozen=True)
class NationOutcome:
    """What a region's summary takes from the nation's result."""

    status: str
    bound: float
    gap: float
    solve_seconds: float
    rounds: int

    @classmethod
    def of(cls, result: NationResult) -> "NationOutcome":
        return cls(result.status, result.bound, result.gap, result.solve_seconds, len(result.rounds))


def view_plan_files(view: RegionalView, price_rub: np.ndarray, region_params: Params, column: Column,
                    outcome: NationOutcome, region_id: str, nation_name: str) -> PlanFiles:
    """Region's §6 files from its plan column; works where the region's view lives (driver or actor)."""
    inst = Instance.build(view.region, region_params)
    n_acts = max(1, len(inst.activities))
    keys = inst.options.teacher.astype(np.int64) * n_acts + inst.options.activity
    chosen = np.isin(keys, column.teacher * n_acts + column.activity)
    if chosen.sum() != len(column.teacher):
        raise RuntimeError(f"region {region_id}: the plan's assignments are not all options of the region")
    region_result = Result(inst, chosen, outcome.status, column.value, outcome.bound, outcome.solve_seconds,
                           {"nation_rounds": outcome.rounds})
    assignments = assignments_frame(region_result)
    first_federal = len(view.region.mentors) + len(view.region.site_sessions) + view.first_federal
    federal = assignments["_activity"].to_numpy() >= first_federal
    assignments.loc[federal, "cost_rub"] = price_rub[assignments.loc[federal, "_activity"].to_numpy() - first_federal]
    assignments.loc[federal, "funded_by"] = FEDERAL
    profiles = deficit_profiles(view.region, region_params, random_state=region_params.seed)
    summary = summary_dict(region_result, assignments, profiles)
    summary["spending"]["federal_rub"] = int(assignments.loc[federal, "cost_rub"].sum())
    summary["assignments"]["federal"] = int(federal.sum())
    summary.update(status=outcome.status, bound=outcome.bound, gap=outcome.gap, region_id=region_id,
                   nation=nation_name)
    return PlanFiles(assignments[ASSIGNMENT_COLUMNS], routes_frame(region_result, assignments), summary,
                     clusters_frame(view.region, profiles), region=view.region, params=region_params)


def nation_summary(nation: NationData, result: NationResult, region_summaries: list[dict]) -> dict:
    fed = nation.federal
    sessions = np.concatenate([c.sessions for c in result.columns]).astype(np.int64) if result.columns else \
        np.zeros(0, np.int64)
    used = np.bincount(sessions, minlength=len(fed.session_ids))
    objective = float(sum(s["objective"] for s in region_summaries))
    bound = max(result.bound, objective)
    return {
        "status": result.status,
        "objective": objective,
        "bound": bound,
        "gap": max(0.0, relative_gap(objective, bound)),
        "solve_seconds": round(result.solve_seconds, 3),
        "nation": nation.name,
        "period": [nation.period_start.isoformat(), nation.period_end.isoformat()],
        "need_total": float(sum(s["need_total"] for s in region_summaries)),
        "need_covered": float(sum(s["need_covered"] for s in region_summaries)),
        "teachers": int(sum(s["teachers"] for s in region_summaries)),
        "teachers_reached": int(sum(s["teachers_reached"] for s in region_summaries)),
        "regions": [{"region_id": rid, "objective": s["objective"], "need_total": s["need_total"],
                     "need_covered": s["need_covered"], "teachers_reached": s["teachers_reached"]}
                    for rid, s in zip(nation.region_ids, region_summaries)],
        "federal": {
            "sessions": [{"session_id": sid, "seats": int(fed.seats[s]), "used": int(used[s])}
                         for s, sid in enumerate(fed.session_ids)],
            "budget": {"amount_rub": int(fed.budget_rub), "used_rub": int(sum(c.spend_rub for c in result.columns))},
            "quotas": [{"region_id": rid, "amount_rub": int(fed.quota_rub[r]),
                        "used_rub": int(result.columns[r].spend_rub)}
                       for r, rid in enumerate(nation.region_ids) if fed.quota_rub[r] >= 0],
        },
        "rounds": _json_safe({"list": result.rounds})["list"],
    }


def write_nation_plan(nation: NationData, params: NationParams, result: NationResult, out_dir: str | Path,
                      region_summaries: list[dict] | None = None) -> dict:
    """Writes regions/<region_id>/ (a §6 folder each; skipped where `region_summaries` says they were
    written already, by the Ray workers) and the nation's summary.json; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if region_summaries is None:
        region_summaries = []
        for r, region_id in enumerate(nation.region_ids):
            files = region_plan_files(nation, params, result, r)
            write_plan(files, out / "regions" / region_id)
            region_summaries.append(files.summary)
    summary = nation_summary(nation, result, region_summaries)
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def plan_nation(nation: NationData, params: NationParams, out_dir: str | Path, *, address: str | None = None,
                distributed: bool = True, deadline: float | None = None, on_progress=None) -> dict:
    """Solves the nation and writes its plan. With `distributed`, the regions are priced on the Ray
    cluster at `address`, or on a local one started and stopped here; `deadline` (time.perf_counter())
    is when the whole request must be done, the writing included."""
    import time

    from .nation_solve import LocalBackend, solve_nation

    deadline = deadline or time.perf_counter() + params.params.time_limit_s
    # Writing a region's folder (profiles, six files, a workbook) measured 1.3 s for 160 teachers and
    # grows with them; the Ray workers write theirs in parallel.
    teachers = sum(len(r.teachers) for r in nation.regions)
    writing = min(0.3 * params.params.time_limit_s, 1.0 + (1.3 * len(nation.regions) + teachers / 2000)
                  / (1 if not distributed else 2))
    if not distributed:
        result = solve_nation(nation, params, LocalBackend(nation, params), on_progress,
                              time_limit_s=max(1.0, deadline - writing - time.perf_counter()))
        return write_nation_plan(nation, params, result, out_dir)
    from .nation_ray import RayBackend, ray_cluster

    with ray_cluster(address):
        backend = RayBackend(nation, params)
        try:
            result = solve_nation(nation, params, backend, on_progress,
                                  time_limit_s=max(1.0, deadline - writing - time.perf_counter()))
            # On a cluster started here the workers share this machine's disk: they write the folders.
            summaries = backend.write_all(result, nation.name, Path(out_dir).resolve()) if address is None else None
        finally:
            backend.close()
    return write_nation_plan(nation, params, result, out_dir, summaries)
