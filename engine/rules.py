"""The ten rules of SPEC §4, one function each, checked on a whole plan.

The solver models the rules; this module checks a finished plan (or a pinned set) against them,
independently of how the plan was found, so that no plan leaves the engine unchecked.
A plan is two parallel arrays: teacher index and activity index (see engine.options).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .options import INTERNSHIP, MENTOR, Activities
from .params import KINDS, Params
from .region import RegionData


@dataclass(frozen=True)
class PlanArrays:
    teacher: np.ndarray
    activity: np.ndarray


Rule = Callable[[RegionData, Params, Activities, PlanArrays], list[str]]


def _name(region: RegionData, activities: Activities, t: int, a: int) -> str:
    return f"{region.teachers.ids[t]} → {KINDS[activities.kind[a]]} {activities.ids[a]}"


def rule_capacity(region, params, activities, plan) -> list[str]:
    """1. Mentees of a mentor <= capacity; teachers in a session <= seats."""
    used = np.bincount(plan.activity, minlength=len(activities))
    over = np.flatnonzero(used > activities.capacity)
    return [f"{activities.ids[a]}: {used[a]} участников при вместимости {activities.capacity[a]}" for a in over]


def rule_counts(region, params, activities, plan) -> list[str]:
    """2. At most one mentor, max_internships internships, max_programs programs; never two sessions
    of the same program or of the same site; no assignment twice."""
    out = []
    n_t = len(region.teachers)
    limits = (1, params.max_internships, params.max_programs)
    kinds = activities.kind[plan.activity]
    for k, limit in enumerate(limits):
        per_teacher = np.bincount(plan.teacher[kinds == k], minlength=n_t)
        out += [f"{region.teachers.ids[t]}: {per_teacher[t]} × {KINDS[k]} (не более {limit})"
                for t in np.flatnonzero(per_teacher > limit)]
    groups = activities.group[plan.activity]
    grouped = groups >= 0
    pairs = plan.teacher[grouped].astype(np.int64) * activities.group_key_base + groups[grouped]
    values, counts = np.unique(pairs, return_counts=True)
    for v in values[counts > 1]:
        t = int(v // activities.group_key_base)
        out.append(f"{region.teachers.ids[t]}: две сессии одной программы или площадки")
    keys = plan.teacher.astype(np.int64) * len(activities) + plan.activity
    values, counts = np.unique(keys, return_counts=True)
    out += [f"{_name(region, activities, int(v // len(activities)), int(v % len(activities)))}: повтор"
            for v in values[counts > 1]]
    return out


def rule_mentors(region, params, activities, plan) -> list[str]:
    """3. A mentor never mentors themselves; with mentor_from_other_school, never their own school."""
    out = []
    is_mentor = activities.kind[plan.activity] == MENTOR
    for t, a in zip(plan.teacher[is_mentor], plan.activity[is_mentor]):
        if activities.mentor_teacher[a] == t:
            out.append(f"{_name(region, activities, t, a)}: наставник сам себе")
        if params.mentor_from_other_school and activities.school[a] == region.teachers.school[t]:
            out.append(f"{_name(region, activities, t, a)}: наставник из той же школы")
    return out


def rule_internships(region, params, activities, plan) -> list[str]:
    """4. Never an internship at the teacher's own school."""
    is_internship = activities.kind[plan.activity] == INTERNSHIP
    return [f"{_name(region, activities, t, a)}: стажировка в своей школе"
            for t, a in zip(plan.teacher[is_internship], plan.activity[is_internship])
            if activities.school[a] == region.teachers.school[t]]


def rule_travel(region, params, activities, plan) -> list[str]:
    """5. In-person activities lie within max_travel_minutes of the teacher's school municipality."""
    place = activities.municipality[plan.activity]
    home = region.teacher_municipality[plan.teacher]
    in_person = place >= 0
    minutes = np.where(in_person, region.travel_minutes[home, np.maximum(place, 0)], 0.0)
    bad = np.flatnonzero(minutes > params.max_travel_minutes)
    return [f"{_name(region, activities, plan.teacher[i], plan.activity[i])}: дорога {minutes[i]:.0f} мин"
            for i in bad]


def rule_schedule(region, params, activities, plan) -> list[str]:
    """6. Two dated sessions of a teacher never overlap (online programs and mentoring are undated)."""
    dated = activities.dated[plan.activity]
    order = np.lexsort((activities.start[plan.activity[dated]], plan.teacher[dated]))
    teachers, acts = plan.teacher[dated][order], plan.activity[dated][order]
    out = []
    latest_end, previous = {}, {}
    for t, a in zip(teachers.tolist(), acts.tolist()):
        if t in latest_end and activities.start[a] <= latest_end[t]:
            out.append(f"{region.teachers.ids[t]}: {activities.ids[previous[t]]} и {activities.ids[a]} "
                       "пересекаются по датам")
        if activities.end[a] > latest_end.get(t, -1):
            latest_end[t], previous[t] = activities.end[a], a
    return out


def rule_hours(region, params, activities, plan) -> list[str]:
    """7. Mentor hours_per_mentee + internship hours + program hours <= max_hours."""
    hours = np.bincount(plan.teacher, weights=activities.hours[plan.activity], minlength=len(region.teachers))
    bad = np.flatnonzero(hours > region.teachers.max_hours + 1e-9)
    return [f"{region.teachers.ids[t]}: {hours[t]:g} ч при лимите {region.teachers.max_hours[t]:g}" for t in bad]


def rule_vouchers(region, params, activities, plan) -> list[str]:
    """8. Program prices of a teacher sum to <= voucher_rub."""
    spent = np.bincount(plan.teacher, weights=activities.voucher_rub[plan.activity], minlength=len(region.teachers))
    bad = np.flatnonzero(spent > region.teachers.voucher_rub)
    return [f"{region.teachers.ids[t]}: {spent[t]:.0f} ₽ при сертификате {region.teachers.voucher_rub[t]}"
            for t in bad]


def rule_budgets(region, params, activities, plan) -> list[str]:
    """9. Internship costs and mentor stipends, paid by the teacher's municipality, fit its budget
    (where a row exists) and, summed over the region, the region's budget."""
    municipality = region.teacher_municipality[plan.teacher]
    spent = np.bincount(municipality, weights=activities.budget_rub[plan.activity],
                        minlength=len(region.municipalities))
    limits = region.budgets.municipality_rub
    out = [f"бюджет {region.municipalities.ids[m]}: {spent[m]:.0f} ₽ при лимите {limits[m]}"
           for m in np.flatnonzero((limits >= 0) & (spent > limits))]
    if spent.sum() > region.budgets.region_rub:
        out.append(f"бюджет региона: {spent.sum():.0f} ₽ при лимите {region.budgets.region_rub}")
    return out


def rule_pinned_forbidden(region, params, activities, plan) -> list[str]:
    """10. Pinned assignments are in the plan; forbidden ones are not."""
    present = {(region.teachers.ids[t], KINDS[activities.kind[a]], activities.ids[a])
               for t, a in zip(plan.teacher.tolist(), plan.activity.tolist())}
    out = [f"закреплённое {p.teacher_id} → {p.kind} {p.resource_id} отсутствует" for p in params.pinned
           if (p.teacher_id, p.kind, p.resource_id) not in present]
    out += [f"запрещённое {p.teacher_id} → {p.kind} {p.resource_id} в плане" for p in params.forbidden
            if (p.teacher_id, p.kind, p.resource_id) in present]
    return out


RULES: tuple[Rule, ...] = (rule_capacity, rule_counts, rule_mentors, rule_internships, rule_travel,
                           rule_schedule, rule_hours, rule_vouchers, rule_budgets, rule_pinned_forbidden)


def violations(region: RegionData, params: Params, activities: Activities, plan: PlanArrays) -> list[str]:
    out: list[str] = []
    for rule in RULES:
        out += rule(region, params, activities, plan)
    return out
