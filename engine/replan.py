"""Re-planning with little disruption: a mentor falls ill, a session is cancelled, a budget is cut,
new teachers arrive.

    replan(region, previous, changes, params, keep_bonus) -> Replan

The changes (engine.changes: a JSON file) are applied to the region; every previous assignment
whose teacher and resource still exist is offered to the solver with `keep_bonus` points for
keeping it, so an assignment moves only where moving gains more than the bonus. The plan
returned is whichever scores higher with the bonus counted: the solver's (then topped up
greedily with seats and money it left free), or a repair of the previous plan (what is still
valid; budget-funded assignments dropped least-loss-per-rouble first where a cut budget no longer
covers them; then the free seats and money filled greedily). On a big region, where the solve
stops at its time limit far from a proof, the repair is often the one returned.

The report says exactly what changed and why, counted: each dropped assignment is
`teacher_left`, `mentor_unavailable`, `session_cancelled`, `no_longer_allowed` (a rule now
excludes it, e.g. it costs more than the whole cut budget), `budget_cut` (its budget no longer
covers the previous plan) or `moved` (the solver found a use worth more than the bonus); each
added one is `new_teacher`, `replaces_lost` (its teacher lost an assignment to the changes),
`moved` (its teacher gave one up for it) or `improvement` (a seat or money freed elsewhere).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .changes import Changes, apply_changes
from .explain import plan_indices
from .needs import need_matrix
from .options import build_activities
from .params import KINDS, AssignmentRef, Params
from .region import RegionData
from .rules import PlanArrays, violations
from .solver import Progress, Result, solve
from .solver.greedy import greedy
from .solver.instance import Instance

DEFAULT_KEEP_BONUS = 0.1  # points: 10,000 roubles at the default rub_per_point
FORCED = ("teacher_left", "mentor_unavailable", "session_cancelled", "no_longer_allowed", "budget_cut")
CHANGE_COLUMNS = ["change", "teacher_id", "kind", "resource_id", "reason", "detail"]


@dataclass
class Replan:
    result: Result  # on the changed region
    region: RegionData  # the region after the changes
    changes: Changes
    changed: pd.DataFrame  # CHANGE_COLUMNS: every dropped and added assignment with its reason
    report: dict

    def refs(self) -> list[AssignmentRef]:
        return result_refs(self.result)


def result_refs(result: Result) -> list[AssignmentRef]:
    plan = result.plan
    region, acts = result.instance.region, result.activities
    return [AssignmentRef(teacher_id=region.teachers.ids[t], kind=KINDS[acts.kind[a]], resource_id=acts.ids[a])
            for t, a in zip(plan.teacher.tolist(), plan.activity.tolist())]


def refs_from_frame(assignments: pd.DataFrame) -> list[AssignmentRef]:
    return [AssignmentRef(teacher_id=str(t), kind=str(k), resource_id=str(r))
            for t, k, r in zip(assignments["teacher_id"], assignments["kind"], assignments["resource_id"])]


def plan_objective(region: RegionData, params: Params, refs: list[AssignmentRef]) -> float:
    """SPEC §5 of a list of assignments on a region (assignments whose ids are unknown are skipped)."""
    acts = build_activities(region)
    t, a = plan_indices(region, acts, refs)
    need = need_matrix(region, params)
    cover = np.zeros_like(need)
    np.add.at(cover, t, acts.weights[a])
    return float((need * np.minimum(1.0, cover)).sum() - acts.cost_rub[a].sum() / params.rub_per_point)


def replan(region: RegionData, previous: list[AssignmentRef], changes: Changes, params: Params,
           keep_bonus: float = DEFAULT_KEEP_BONUS, on_progress: Callable[[Progress], None] | None = None,
           profiles: np.ndarray | None = None, should_stop: Callable[[], bool] | None = None) -> Replan:
    started = time.perf_counter()
    new_region = apply_changes(region, changes)
    params, unpinned = _params_for(new_region, params)
    acts = build_activities(new_region)
    valid = [ref for ref in previous if ref.teacher_id in new_region.teachers.index
             and acts.lookup(ref.kind, ref.resource_id) is not None]
    result = solve(new_region, params, on_progress=on_progress, profiles=profiles, should_stop=should_stop,
                   keep=valid, keep_bonus=keep_bonus)
    inst = result.instance
    polished = greedy(inst, chosen=result.chosen)  # free seats and money the solver left: only adds
    if inst.solver_objective(polished) > inst.solver_objective(result.chosen) + 1e-9:
        objective = inst.objective(polished)
        result = Result(inst, polished, "FEASIBLE", objective, max(result.bound, objective), result.solve_seconds,
                        result.statistics, result.history)
    repaired, over_budget = _repair(inst, valid)
    source = "solver"
    if repaired is not None and inst.solver_objective(repaired) > inst.solver_objective(result.chosen) + 1e-9:
        objective = inst.objective(repaired)
        result = Result(inst, repaired, "FEASIBLE", objective, max(result.bound, objective), result.solve_seconds,
                        {**result.statistics, "replan_source": "repair"}, result.history)
        source = "repair"
    changed = _diff(inst, previous, valid, result, changes, over_budget)
    report = _report(previous, result, changed, changes, keep_bonus, source, unpinned,
                     time.perf_counter() - started)
    return Replan(result, new_region, changes, changed, report)


def _params_for(region: RegionData, params: Params) -> tuple[Params, list[dict]]:
    """Pinned and forbidden assignments naming what the changes removed are dropped (and reported)."""
    acts = build_activities(region)

    def exists(ref: AssignmentRef) -> bool:
        return ref.teacher_id in region.teachers.index and acts.lookup(ref.kind, ref.resource_id) is not None

    dropped = [{"field": field, **ref.model_dump()} for field in ("pinned", "forbidden")
               for ref in getattr(params, field) if not exists(ref)]
    if not dropped:
        return params, []
    return params.model_copy(update={"pinned": [r for r in params.pinned if exists(r)],
                                     "forbidden": [r for r in params.forbidden if exists(r)]}), dropped


def _option_marginals(inst: Instance, chosen: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """What each chosen option adds to its teacher's value (SPEC objective), the rest of the route fixed."""
    acts = inst.activities
    out = np.empty(len(idx))
    cover = np.zeros_like(inst.need)
    sel = np.flatnonzero(chosen)
    np.add.at(cover, inst.options.teacher[sel], acts.weights[inst.options.activity[sel]])
    for j, o in enumerate(idx.tolist()):
        t = inst.options.teacher[o]
        w = acts.weights[inst.options.activity[o]]
        out[j] = inst.need[t] @ (np.minimum(1.0, cover[t]) - np.minimum(1.0, cover[t] - w)) - inst.cost_points[o]
    return out


def _repair(inst: Instance, valid: list[AssignmentRef]) -> tuple[np.ndarray | None, set]:
    """The previous plan made feasible on the changed region, then filled greedily; and the budget
    scopes (municipality index, or None for the region) that no longer cover the previous plan."""
    opts = inst.options
    chosen = np.zeros(inst.n_options, dtype=bool)
    chosen[opts.find(inst.region, inst.activities, valid)] = True
    chosen |= opts.pinned
    over: set = set()
    limits = inst.region.budgets.municipality_rub
    for scope in [m for m in range(len(limits)) if limits[m] >= 0] + [None]:
        sel = np.flatnonzero(chosen & (inst.budget_rub > 0) & ~opts.pinned)
        if scope is not None:
            sel = sel[inst.municipality[sel] == scope]
            spent = inst.budget_rub[chosen & (inst.municipality == scope)].sum()
            limit = limits[scope]
        else:
            spent, limit = inst.budget_rub[chosen].sum(), inst.region.budgets.region_rub
        if spent <= limit:
            continue
        over.add(scope)
        # Drop the assignments that lose least per rouble first.
        order = sel[np.argsort(_option_marginals(inst, chosen, sel) / inst.budget_rub[sel], kind="stable")]
        for o in order.tolist():
            if spent <= limit:
                break
            chosen[o] = False
            spent -= inst.budget_rub[o]
    idx = np.flatnonzero(chosen)
    if violations(inst.region, inst.params, inst.activities, PlanArrays(opts.teacher[idx], opts.activity[idx])):
        return None, over
    return greedy(inst, chosen=chosen), over


def _diff(inst: Instance, previous: list[AssignmentRef], valid: list[AssignmentRef], result: Result,
          changes: Changes, over_budget: set) -> pd.DataFrame:
    region, acts, opts = inst.region, inst.activities, inst.options
    key = lambda r: (r.teacher_id, r.kind, r.resource_id)  # noqa: E731
    before = {key(r) for r in previous}
    after = {key(r) for r in result_refs(result)}
    valid_keys = {key(r) for r in valid}
    option_of = {}
    n_acts = max(1, len(acts))
    option_keys = opts.teacher.astype(np.int64) * n_acts + opts.activity
    for r in valid:
        t, a = region.teachers.index[r.teacher_id], acts.lookup(r.kind, r.resource_id)
        pos = np.searchsorted(option_keys, t * n_acts + a)
        if pos < len(option_keys) and option_keys[pos] == t * n_acts + a:
            option_of[key(r)] = int(pos)
    left, ill, cancelled = set(changes.remove_teachers), set(changes.remove_mentors), set(changes.cancel_sessions)
    new_teachers = {t.teacher_id for t in changes.add_teachers}
    rows = []
    dropped_reason: dict[str, list[str]] = {}
    for k in sorted(before - after):
        teacher, kind, resource = k
        if teacher in left:
            reason, detail = "teacher_left", "учитель выбыл (teacher left)"
        elif kind == "mentor" and resource in ill:
            reason, detail = "mentor_unavailable", "наставник выбыл (mentor unavailable)"
        elif resource in cancelled:
            reason, detail = "session_cancelled", "сеанс отменён (session cancelled)"
        elif k not in valid_keys or k not in option_of:
            reason, detail = "no_longer_allowed", "правила больше не допускают назначение (a rule now excludes it)"
        elif inst.budget_rub[option_of[k]] > 0 and (None in over_budget
                                                    or int(inst.municipality[option_of[k]]) in over_budget):
            scope = "региона" if None in over_budget else \
                f"муниципалитета {region.municipalities.ids[inst.municipality[option_of[k]]]}"
            reason, detail = "budget_cut", (f"бюджет {scope} после сокращения не покрывает прежний план "
                                            "(the cut budget no longer covers the previous plan)")
        else:
            reason, detail = "moved", "перемещено: выигрыш больше бонуса за сохранение (moving gains more than the bonus)"
        dropped_reason.setdefault(teacher, []).append(reason)
        rows.append(["dropped", teacher, kind, resource, reason, detail])
    for k in sorted(after - before):
        teacher, kind, resource = k
        lost = dropped_reason.get(teacher, [])
        if teacher in new_teachers:
            reason, detail = "new_teacher", "новый учитель (new teacher)"
        elif any(r in FORCED for r in lost):
            reason, detail = "replaces_lost", "замена утраченного назначения (replaces a lost assignment)"
        elif lost:
            reason, detail = "moved", "взамен перемещённого (instead of a moved one)"
        else:
            reason, detail = "improvement", "освободилось место или деньги (a seat or money was freed)"
        rows.append(["added", teacher, kind, resource, reason, detail])
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def _report(previous, result: Result, changed: pd.DataFrame, changes: Changes, keep_bonus: float, source: str,
            unpinned: list[dict], seconds: float) -> dict:
    dropped = changed[changed["change"] == "dropped"]
    added = changed[changed["change"] == "added"]
    return {
        "changes": {"remove_mentors": changes.remove_mentors, "cancel_sessions": changes.cancel_sessions,
                    "budget_scale": changes.budget_scale, "municipal_budget_scale": changes.municipal_budget_scale,
                    "remove_teachers": changes.remove_teachers,
                    "add_teachers": [t.teacher_id for t in changes.add_teachers], "note": changes.note},
        "keep_bonus": keep_bonus,
        "previous_assignments": len(previous),
        "assignments": int(result.chosen.sum()),
        "kept": len(previous) - len(dropped),
        "dropped": len(dropped),
        "added": len(added),
        "changed": len(dropped) + len(added),
        "forced": int(dropped["reason"].isin(FORCED).sum()),
        "dropped_by_reason": dict(Counter(dropped["reason"])),
        "added_by_reason": dict(Counter(added["reason"])),
        "teachers_changed": int(changed["teacher_id"].nunique()),
        "unpinned": unpinned,
        "status": result.status,
        "objective": result.objective,
        "bound": result.bound,
        "plan_from": source,
        "seconds": round(seconds, 3),
    }


def write_replan(replanned: Replan, out_dir: str | Path, profiles=None, summary_extra: dict | None = None,
                 bundle: str | None = None) -> Path:
    """The new plan's files (SPEC §6, with `replan` in summary.json), explain.csv, explain_totals.csv,
    changes.csv and replan.json."""
    from .explain import explain_result, write_explanation
    from .plan import deficit_profiles, plan_files, write_plan

    out = Path(out_dir)
    params = replanned.result.instance.params
    if profiles is None:
        profiles = deficit_profiles(replanned.region, params, random_state=params.seed)
    files = plan_files(replanned.result, profiles)
    files.summary["replan"] = {**replanned.report, **(summary_extra or {})}
    if bundle is not None:  # as `marshrut plan` records it: later commands find the region
        files.summary["bundle"] = bundle
    write_plan(files, out)
    write_explanation(explain_result(replanned.result), out)
    replanned.changed.to_csv(out / "changes.csv", index=False, lineterminator="\n")
    (out / "replan.json").write_text(json.dumps(files.summary["replan"], ensure_ascii=False, indent=2, default=float),
                                     encoding="utf-8")
    return out


def previous_params(plan_dir: str | Path) -> Params:
    """The parameters a plan folder was made with (summary.json), less pinned/forbidden (only counted there)."""
    from .params import params_from_dict

    summary = json.loads((Path(plan_dir) / "summary.json").read_text(encoding="utf-8"))
    data = {k: v for k, v in (summary.get("params") or {}).items() if k not in ("pinned", "forbidden")}
    return params_from_dict(data, "summary.json")


def read_assignments(plan_dir: str | Path) -> list[AssignmentRef]:
    frame = pd.read_csv(Path(plan_dir) / "assignments.csv", dtype=str, keep_default_na=False)
    return refs_from_frame(frame)
