"""Re-planning benchmark: `python -m marshrut.benchmarks.replan_bench [--regions ...] [--time-limit S ...]`.

For each region: plan it (P0); then one mentor (the one with most mentees in P0), one session (the
internship session with most participants in P0) and 10% of every budget are removed. The changed
region is planned twice, with the same time limit: by `replan` from P0 (keep bonus) and by a fresh
solve. Reported: assignments changed against P0 (dropped + added; and the teachers whose route
changed) by each, the changes any plan is forced to make (assignments to the removed mentor and
session), and the objective the re-plan gives up against the fresh solve. Each plan is checked by
the engine's rule checker. Also timed: fitting one new teacher into the re-plan (engine.fit).

Results go to benchmarks/results/replan.csv and .md (one row per region), and to stdout.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from marshrut.engine import Params, load_bundle, solve
from marshrut.engine.changes import Changes, NewTeacher, apply_changes
from marshrut.engine.fit import fit_teacher
from marshrut.engine.options import INTERNSHIP, MENTOR
from marshrut.engine.replan import DEFAULT_KEEP_BONUS, replan, result_refs
from marshrut.engine.rules import violations

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"
SAMPLES = ROOT / "datasets" / "samples"
DEFAULT_LIMITS = {"krymsky-district": 20.0, "altai-krai": 120.0}


def bundle_path(name: str, scratch: Path) -> Path:
    if (SAMPLES / name).exists():
        return SAMPLES / name
    from marshrut.datasets.generator import generate_bundle

    return generate_bundle(name, scratch / name, seed=0)


def _keys(refs) -> set[tuple[str, str, str]]:
    return {(r.teacher_id, r.kind, r.resource_id) for r in refs}


def _changed(before: set, after: set) -> dict:
    dropped, added = before - after, after - before
    return {"dropped": len(dropped), "added": len(added), "changed": len(dropped) + len(added),
            "teachers": len({k[0] for k in dropped | added})}


def _check(result) -> None:
    plan = result.plan
    broken = violations(result.instance.region, result.instance.params, result.instance.activities, plan)
    if broken:
        raise RuntimeError("; ".join(broken[:3]))


def run_region(name: str, time_limit: float, keep_bonus: float, scratch: Path, log=print) -> dict:
    started = time.perf_counter()
    region = load_bundle(bundle_path(name, scratch))
    log(f"{name}: {len(region.teachers)} teachers, loaded in {time.perf_counter() - started:.1f} s")
    params = Params(time_limit_s=time_limit)
    before = solve(region, params)
    _check(before)
    previous = result_refs(before)
    log(f"  P0: {before.status} objective {before.objective:.3f} bound {before.bound:.3f}, "
        f"{len(previous)} assignments, {before.solve_seconds:.1f} s")
    acts = before.instance.activities
    used = np.bincount(before.plan.activity, minlength=len(acts))
    mentor = int(np.argmax(np.where(acts.kind == MENTOR, used, -1)))
    session = int(np.argmax(np.where(acts.kind == INTERNSHIP, used, -1)))
    changes = Changes(remove_mentors=[acts.ids[mentor]], cancel_sessions=[acts.ids[session]], budget_scale=0.9,
                      note="benchmark: one mentor, one session, 10% of every budget")
    forced = int(used[mentor] + used[session])
    log(f"  changes: mentor {acts.ids[mentor]} ({used[mentor]} mentees), session {acts.ids[session]} "
        f"({used[session]} teachers), budgets x0.9")

    replanned = replan(region, previous, changes, params, keep_bonus=keep_bonus)
    _check(replanned.result)
    log(f"  re-plan: objective {replanned.result.objective:.3f}, {replanned.report['seconds']:.1f} s, "
        f"from {replanned.report['plan_from']}: dropped {replanned.report['dropped_by_reason']}, "
        f"added {replanned.report['added_by_reason']}")
    changed_region = apply_changes(region, changes)
    fresh = solve(changed_region, params)
    _check(fresh)
    log(f"  fresh: {fresh.status} objective {fresh.objective:.3f} bound {fresh.bound:.3f}, {fresh.solve_seconds:.1f} s")

    p0 = _keys(previous)
    by_replan = _changed(p0, _keys(replanned.refs()))
    by_fresh = _changed(p0, _keys(result_refs(fresh)))

    # Fit one new teacher into the re-plan (no instance is built): the time a planner waits.
    rng = np.random.default_rng(0)
    newcomer = NewTeacher(teacher_id="NEW-BENCH", school_id=changed_region.schools.ids[0], voucher_rub=30000,
                          max_hours=144, scores={c: float(rng.integers(10, 90)) for c in changed_region.competencies.ids})
    plan = replanned.result.plan
    fit_seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        fit = fit_teacher(changed_region, params, plan.teacher, plan.activity, newcomer,
                          activities=replanned.result.instance.activities)
        fit_seconds.append(time.perf_counter() - t0)
    best = min(replanned.result.objective, fresh.objective)
    row = {
        "region": name, "teachers": len(region.teachers), "time_limit_s": time_limit, "keep_bonus": keep_bonus,
        "p0_assignments": len(previous), "p0_objective": round(before.objective, 4), "p0_status": before.status,
        "forced_changes": forced,
        "replan_dropped": by_replan["dropped"], "replan_added": by_replan["added"],
        "replan_changed": by_replan["changed"], "replan_teachers_changed": by_replan["teachers"],
        "fresh_dropped": by_fresh["dropped"], "fresh_added": by_fresh["added"],
        "fresh_changed": by_fresh["changed"], "fresh_teachers_changed": by_fresh["teachers"],
        "replan_objective": round(replanned.result.objective, 4), "fresh_objective": round(fresh.objective, 4),
        "fresh_bound": round(fresh.bound, 4), "fresh_status": fresh.status,
        "objective_lost": round(fresh.objective - replanned.result.objective, 4),
        "objective_lost_pct": round(100 * (fresh.objective - replanned.result.objective) / max(1e-9, abs(best)), 3),
        "replan_seconds": replanned.report["seconds"], "fresh_seconds": round(fresh.solve_seconds, 2),
        "fit_seconds_median": round(float(np.median(fit_seconds)), 4), "fit_routes": len(fit.routes),
        "replan_dropped_by_reason": json.dumps(replanned.report["dropped_by_reason"]),
        "replan_added_by_reason": json.dumps(replanned.report["added_by_reason"]),
    }
    log("  " + json.dumps(row, ensure_ascii=False))
    return row


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| region | teachers | limit, s | P0 assignments | forced | re-plan changed (dropped + added) | "
             "fresh changed (dropped + added) | teachers changed: re-plan / fresh | objective: re-plan / fresh | "
             "lost | fit, s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in frame.itertuples():
        lines.append(
            f"| {r.region} | {r.teachers:,} | {r.time_limit_s:g} | {r.p0_assignments:,} | {r.forced_changes} | "
            f"{r.replan_changed} ({r.replan_dropped} + {r.replan_added}) | "
            f"{r.fresh_changed} ({r.fresh_dropped} + {r.fresh_added}) | "
            f"{r.replan_teachers_changed} / {r.fresh_teachers_changed} | "
            f"{r.replan_objective:.2f} / {r.fresh_objective:.2f} | {r.objective_lost:+.2f} ({r.objective_lost_pct:+.2f}%) | "
            f"{r.fit_seconds_median:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regions", nargs="+", default=list(DEFAULT_LIMITS))
    parser.add_argument("--time-limit", type=float, nargs="*", help="seconds per solve, one per region")
    parser.add_argument("--keep-bonus", type=float, default=DEFAULT_KEEP_BONUS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    limits = args.time_limit or [DEFAULT_LIMITS.get(r, 30.0) for r in args.regions]
    if len(limits) == 1:
        limits = limits * len(args.regions)
    rows = []
    with tempfile.TemporaryDirectory(prefix="marshrut-replan-bench-") as scratch:
        for name, limit in zip(args.regions, limits):
            rows.append(run_region(name, limit, args.keep_bonus, Path(scratch)))
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "replan.csv", index=False, lineterminator="\n")
    (args.out / "replan.md").write_text(markdown(frame) + "\n", encoding="utf-8")
    print(markdown(frame))
    return frame


if __name__ == "__main__":
    main()
