"""Who is left out (SPEC §6 v2 `fairness`), and the workbook rows of the teachers left out.

For teachers of low-results schools and the others, due teachers and the others, and each
municipality: the teachers with need (need > 0 in some competency), the share of them reached (at
least one assignment), and the share of their need covered (the weighted need of SPEC §5, so the
figures add up to the summary's need_total and need_covered). And the count of teachers with need
left with no assignment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .needs import training_due
from .params import Params
from .region import RegionData

# The reason groups of engine.explain, as a planner reads them.
REASON_TEXT = {
    "no_option": "нет подходящего варианта (no option)",
    "taken": "места заняты (taken)",
    "money": "не хватило денег (money)",
    "teacher_full": "нет часов или дат (hours)",
    "cost": "дороже пользы (cost)",
    "improvable": "план можно улучшить (improvable)",
}


def _figures(members: np.ndarray, has_need: np.ndarray, is_reached: np.ndarray, need_t: np.ndarray,
             covered_t: np.ndarray) -> dict:
    with_need = members & has_need
    n = int(with_need.sum())
    reached = int((with_need & is_reached).sum())
    total, covered = float(need_t[with_need].sum()), float(covered_t[with_need].sum())
    return {"teachers_with_need": n, "reached": reached, "reached_share": reached / n if n else None,
            "need_total": round(total, 6), "need_covered": round(covered, 6),
            "need_covered_share": covered / total if total else None}


def fairness_dict(region: RegionData, params: Params, need: np.ndarray, cover: np.ndarray,
                  plan_teacher: np.ndarray, floor: dict | None = None, left_out: pd.DataFrame | None = None) -> dict:
    """`need`, `cover`: teachers x competencies; `plan_teacher`: the teacher of each assignment;
    `floor`: engine.solver.floor's report; `left_out`: left_out_rows (their reasons are counted)."""
    need_t = need.sum(axis=1)
    covered_t = (need * np.minimum(1.0, cover)).sum(axis=1)
    has_need = need_t > 0
    is_reached = np.bincount(np.asarray(plan_teacher, dtype=np.int64), minlength=len(need_t)) > 0
    low = region.schools.low_results[region.teachers.school]
    due = training_due(region, params)

    def figures(members: np.ndarray) -> dict:
        return _figures(members, has_need, is_reached, need_t, covered_t)

    municipality = region.teacher_municipality
    municipalities = [
        {"municipality_id": region.municipalities.ids[m], "name": region.municipalities.names[m],
         **figures(municipality == m)}
        for m in range(len(region.municipalities))]
    municipalities = [m for m in municipalities if m["teachers_with_need"]]
    municipalities.sort(key=lambda m: (m["reached_share"], m["need_covered_share"] or 0.0, m["municipality_id"]))
    out = {
        "teachers_with_need": int(has_need.sum()),
        "teachers_left_out": int((has_need & ~is_reached).sum()),
        "low_results": figures(low), "other_schools": figures(~low),
        "due": figures(due), "not_due": figures(~due),
        "municipalities": municipalities,
    }
    if left_out is not None:
        out["left_out_reasons"] = reason_counts(left_out)
    if floor is not None:
        floor = dict(floor, groups={name: dict(group) for name, group in floor["groups"].items()})
        for name, group in floor["groups"].items():
            if left_out is not None:  # why the group's teachers left out are left out
                group["left_out_reasons"] = reason_counts(left_out[left_out[name] == 1])
        out["floor"] = floor
    return out


def left_out_rows(region: RegionData, params: Params, need: np.ndarray, plan_teacher: np.ndarray,
                  uncovered: pd.DataFrame) -> pd.DataFrame:
    """One row per teacher with need and no assignment, with the reason of the explanation.

    `uncovered`: engine.explain's rows of uncovered needs (teacher_id, competency_id, need, reason,
    reason_group, detail). A teacher's reason is the one of their largest need; every reason group met
    across their needs is listed beside it. Sorted as a planner works down the list: due teachers and
    low-results schools first, then by need."""
    need_t = need.sum(axis=1)
    is_reached = np.bincount(np.asarray(plan_teacher, dtype=np.int64), minlength=len(need_t)) > 0
    left = np.flatnonzero((need_t > 0) & ~is_reached)
    columns = ["teacher_id", "school_id", "municipality_id", "low_results", "due", "last_training_date", "need",
               "deficits", "reason_group", "reason", "reason_text", "detail", "all_reason_groups"]
    if len(left) == 0:
        return pd.DataFrame(columns=columns)
    ids = np.asarray(region.teachers.ids, dtype=object)
    school = region.teachers.school[left]
    low = region.schools.low_results[school]
    due = training_due(region, params)[left]
    last = region.teachers.last_training
    frame = pd.DataFrame({
        "teacher_id": ids[left],
        "school_id": np.asarray(region.schools.ids, dtype=object)[school],
        "municipality_id": np.asarray(region.municipalities.ids, dtype=object)[region.schools.municipality[school]],
        "low_results": low.astype(int), "due": due.astype(int),
        "last_training_date": ["" if last is None or last[t] < 0 else _iso(last[t]) for t in left],
        "need": np.round(need_t[left], 6),
        "deficits": [int((need[t] > 0).sum()) for t in left],
    })
    mine = uncovered[uncovered["teacher_id"].isin(set(frame["teacher_id"]))]
    if len(mine):
        mine = mine.assign(need=pd.to_numeric(mine["need"])).sort_values(["teacher_id", "need"],
                                                                         ascending=[True, False], kind="stable")
        top = mine.groupby("teacher_id", sort=False).first()
        groups = mine.groupby("teacher_id", sort=False)["reason_group"].agg(lambda g: ";".join(sorted(set(g))))
        frame["reason_group"] = frame["teacher_id"].map(top["reason_group"]).fillna("")
        frame["reason"] = frame["teacher_id"].map(top["reason"]).fillna("")
        frame["detail"] = frame["teacher_id"].map(top["detail"]).fillna("")
        frame["all_reason_groups"] = frame["teacher_id"].map(groups).fillna("")
    else:
        frame["reason_group"] = frame["reason"] = frame["detail"] = frame["all_reason_groups"] = ""
    frame["reason_text"] = frame["reason_group"].map(REASON_TEXT).fillna("")
    frame = frame.sort_values(["due", "low_results", "need", "teacher_id"], ascending=[False, False, False, True],
                              kind="stable").reset_index(drop=True)
    return frame[columns]


def reason_counts(left_out: pd.DataFrame) -> dict[str, int]:
    """Teachers left out per reason group."""
    return {str(k): int(v) for k, v in left_out["reason_group"].value_counts().sort_index().items()}


def _iso(day_number: int) -> str:
    import datetime as dt

    return dt.date.fromordinal(int(day_number)).isoformat()
