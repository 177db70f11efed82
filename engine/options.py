"""Activities and options.

An *activity* is anything a teacher can be assigned to: a mentor, a site session or a program
session, numbered in that order in one index space so that the solver sees one kind of thing.
An *option* is a (teacher, activity) pair that rules 3-5 allow on its own (mentor not oneself and
from another school, no internship at one's own school, travel within the limit), that no
single-assignment limit already excludes (hours, voucher, budgets), that is not forbidden, and
that addresses at least one of the teacher's needs (pinned ones are kept even if they do not).

Built vectorised over blocks of teachers, never with a Python loop over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import KINDS, AssignmentRef, Params
from .problems import InputError, Problem
from .region import RegionData

MENTOR, INTERNSHIP, PROGRAM = 0, 1, 2
_TEACHER_BLOCK = 2048  # bounds the memory of the teacher x activity masks


@dataclass(frozen=True)
class Activities:
    """Mentors, then site sessions, then program sessions, with everything the rules need."""

    kind: np.ndarray  # int8: MENTOR | INTERNSHIP | PROGRAM
    local: np.ndarray  # index within its own table (mentor, site session, program session)
    ids: tuple[str, ...]
    weights: np.ndarray  # (activities x competencies)
    capacity: np.ndarray  # int64: mentor capacity or seats
    group: np.ndarray  # site / program the session belongs to (one per teacher); -1 for mentors
    dated: np.ndarray  # bool: takes part in the schedule rule (internships, offline programs)
    start: np.ndarray  # day numbers; mentors span the period
    end: np.ndarray
    hours: np.ndarray
    voucher_rub: np.ndarray  # paid from the voucher (programs)
    budget_rub: np.ndarray  # paid by the teacher's municipality (stipends, internship costs)
    cost_rub: np.ndarray  # cost(a) of SPEC §5
    school: np.ndarray  # where it happens (mentor's or site's school); -1 for programs
    municipality: np.ndarray  # where a trip leads; -1 if no trip (remote mentor, online program)
    mentor_teacher: np.ndarray  # the mentor's own teacher index, -1 otherwise
    offsets: tuple[int, int, int, int]  # first activity of each kind, and the total

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def group_key_base(self) -> int:
        """A multiplier that makes teacher * base + group unique per (teacher, program/site)."""
        return int(self.group.max()) + 2 if len(self.group) else 1

    def lookup(self, kind: str, resource_id: str) -> int | None:
        k = KINDS.index(kind)
        table = self._tables[k]
        local = table.get(resource_id)
        return None if local is None else self.offsets[k] + local

    @property
    def _tables(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        cached = self.__dict__.get("_tables_cache")
        if cached is None:
            cached = tuple({self.ids[i]: i - self.offsets[k] for i in range(self.offsets[k], self.offsets[k + 1])}
                           for k in range(3))
            object.__setattr__(self, "_tables_cache", cached)
        return cached


def build_activities(region: RegionData) -> Activities:
    mentors, sites, ss, programs, ps = (region.mentors, region.sites, region.site_sessions, region.programs,
                                        region.program_sessions)
    n_m, n_s, n_p = len(mentors), len(ss), len(ps)
    period_start, period_end = region.period_start.toordinal(), region.period_end.toordinal()
    mentor_municipality = np.where(mentors.remote, -1, region.schools.municipality[mentors.school])
    site_school = sites.school[ss.site]
    program_online = programs.online[ps.program]
    program_price = programs.price_rub[ps.program]
    return Activities(
        kind=np.concatenate([np.full(n_m, MENTOR), np.full(n_s, INTERNSHIP), np.full(n_p, PROGRAM)]).astype(np.int8),
        local=np.concatenate([np.arange(n_m), np.arange(n_s), np.arange(n_p)]),
        ids=tuple(mentors.ids) + tuple(ss.ids) + tuple(ps.ids),
        weights=np.vstack([mentors.weights, sites.weights[ss.site], programs.weights[ps.program]]),
        capacity=np.concatenate([mentors.capacity, ss.seats, ps.seats]).astype(np.int64),
        group=np.concatenate([np.full(n_m, -1), ss.site, len(sites) + ps.program]),
        dated=np.concatenate([np.zeros(n_m, bool), np.ones(n_s, bool), ~program_online]),
        start=np.concatenate([np.full(n_m, period_start), ss.start, ps.start]),
        end=np.concatenate([np.full(n_m, period_end), ss.end, ps.end]),
        hours=np.concatenate([mentors.hours_per_mentee, ss.hours, programs.hours[ps.program]]).astype(float),
        voucher_rub=np.concatenate([np.zeros(n_m + n_s, np.int64), program_price]),
        budget_rub=np.concatenate([mentors.stipend_rub, ss.cost_rub, np.zeros(n_p, np.int64)]),
        cost_rub=np.concatenate([mentors.stipend_rub, ss.cost_rub, program_price]),
        school=np.concatenate([mentors.school, site_school, np.full(n_p, -1)]),
        municipality=np.concatenate([mentor_municipality, region.schools.municipality[site_school],
                                     np.where(program_online, -1, ps.municipality)]),
        mentor_teacher=np.concatenate([mentors.teacher, np.full(n_s + n_p, -1)]),
        offsets=(0, n_m, n_m + n_s, n_m + n_s + n_p),
    )


@dataclass(frozen=True)
class Options:
    """(teacher, activity) pairs sorted by teacher; `first[t]:first[t+1]` are teacher t's options."""

    teacher: np.ndarray  # int32
    activity: np.ndarray  # int32
    first: np.ndarray  # int64, teachers + 1
    pinned: np.ndarray  # bool: must be in the plan

    def __len__(self) -> int:
        return len(self.teacher)

    def find(self, region: RegionData, activities: Activities, refs: list[AssignmentRef]) -> np.ndarray:
        """Indices of the options that are these assignments (those that are options at all)."""
        n_acts = max(1, len(activities))
        keys = self.teacher.astype(np.int64) * n_acts + self.activity
        wanted = np.array(sorted(t * n_acts + a for t, a in _known_pairs(region, activities, refs)), dtype=np.int64)
        return np.flatnonzero(np.isin(keys, wanted))


def allowed_mask(region: RegionData, params: Params, activities: Activities, teachers: np.ndarray,
                 acts: np.ndarray) -> np.ndarray:
    """Which (teacher, activity) pairs rules 3-5 and the single-assignment limits allow: a block mask."""
    school = region.teachers.school[teachers]
    municipality = region.schools.municipality[school]
    kind = activities.kind[acts]
    ok = np.ones((len(teachers), len(acts)), dtype=bool)
    # Rule 2 (counts): a kind allowed zero times has no options.
    limits = np.array([1, params.max_internships, params.max_programs])
    ok &= (limits[kind] > 0)[None, :]
    # Rule 3: not oneself; with mentor_from_other_school, never at one's own school.
    is_mentor = kind == MENTOR
    ok &= ~((activities.mentor_teacher[acts][None, :] == teachers[:, None]) & is_mentor[None, :])
    same_school = activities.school[acts][None, :] == school[:, None]
    if params.mentor_from_other_school:
        ok &= ~(same_school & is_mentor[None, :])
    # Rule 4: never an internship at one's own school.
    ok &= ~(same_school & (kind == INTERNSHIP)[None, :])
    # Rule 5: travel to in-person activities.
    place = activities.municipality[acts]
    in_person = place >= 0
    travel = region.travel_minutes[np.ix_(municipality, np.where(in_person, place, 0))]
    ok &= ~in_person[None, :] | (travel <= params.max_travel_minutes)
    # Rules 7-9 on a single assignment: it must fit the hours, the voucher and the budgets on its own.
    ok &= activities.hours[acts][None, :] <= region.teachers.max_hours[teachers][:, None]
    ok &= activities.voucher_rub[acts][None, :] <= region.teachers.voucher_rub[teachers][:, None]
    budget = activities.budget_rub[acts][None, :]
    municipal = region.budgets.municipality_rub[municipality][:, None]
    ok &= (municipal < 0) | (budget <= municipal)
    ok &= budget <= region.budgets.region_rub
    return ok


def build_options(region: RegionData, params: Params, activities: Activities, need: np.ndarray,
                  extra: list[AssignmentRef] | None = None, worthwhile: bool = False) -> Options:
    """`extra`: assignments to offer even if they address no need (a previous plan's), if the rules allow.

    `worthwhile`: only pairs whose value taken alone (need * min(1, weight) less cost, SPEC §5) is
    positive, pinned and `extra` ones aside. No optimum is lost: an option adds at most its value alone to
    any route (cover is capped at 1), and every rule but pins only limits, so dropping an option of value
    <= 0 from a plan keeps it valid and loses nothing."""
    n_teachers = len(region.teachers)
    forbidden = _refs_to_pairs(region, activities, params.forbidden, "forbidden")
    pinned = _refs_to_pairs(region, activities, params.pinned, "pinned")
    _check_pinned_allowed(region, params, activities, pinned)
    kept = _known_pairs(region, activities, extra or [])
    kept = {(t, a) for t, a in kept
            if allowed_mask(region, params, activities, np.array([t]), np.array([a]))[0, 0]}
    addresses_any = (activities.weights > 0).astype(np.float32).T  # competencies x activities
    has_need = (need > 0).astype(np.float32)
    acts = np.arange(len(activities))
    capped_weights = np.minimum(1.0, activities.weights).T  # competencies x activities
    cost_points = activities.cost_rub / params.rub_per_point
    teacher_parts, activity_parts = [], []
    for block_start in range(0, n_teachers, _TEACHER_BLOCK):
        teachers = np.arange(block_start, min(n_teachers, block_start + _TEACHER_BLOCK))
        ok = allowed_mask(region, params, activities, teachers, acts)
        ok &= (has_need[teachers] @ addresses_any) > 0
        if worthwhile:
            ok &= need[teachers] @ capped_weights > cost_points[None, :]
        rows, cols = np.nonzero(ok)
        teacher_parts.append(teachers[rows])
        activity_parts.append(cols)
    teacher = np.concatenate(teacher_parts) if teacher_parts else np.zeros(0, np.int64)
    activity = np.concatenate(activity_parts) if activity_parts else np.zeros(0, np.int64)
    keys = teacher.astype(np.int64) * len(activities) + activity
    if forbidden:
        keys = keys[~np.isin(keys, np.array([t * len(activities) + a for t, a in forbidden], dtype=np.int64))]
    pinned_keys = np.array(sorted(t * len(activities) + a for t, a in pinned), dtype=np.int64)
    kept_keys = np.array(sorted(t * len(activities) + a for t, a in kept - forbidden), dtype=np.int64)
    # Blocks come out sorted by teacher, then activity; merge the few extra pairs by a sort
    # (np.union1d hashes millions of keys and took 3 s of 3.1 on 5,000 teachers).
    if len(pinned_keys) or len(kept_keys):
        keys = np.sort(np.concatenate([keys, pinned_keys, kept_keys]))
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    teacher = (keys // max(1, len(activities))).astype(np.int32)
    activity = (keys % max(1, len(activities))).astype(np.int32)
    first = np.searchsorted(teacher, np.arange(n_teachers + 1)).astype(np.int64)
    return Options(teacher=teacher, activity=activity, first=first, pinned=np.isin(keys, pinned_keys))


def _refs_to_pairs(region: RegionData, activities: Activities, refs: list[AssignmentRef],
                   field: str) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    problems: list[Problem] = []
    for i, ref in enumerate(refs):
        teacher = region.teachers.index.get(ref.teacher_id)
        activity = activities.lookup(ref.kind, ref.resource_id)
        if teacher is None:
            problems.append(Problem(field, "неизвестный учитель", "unknown_id", i + 1, "teacher_id", ref.teacher_id))
        if activity is None:
            problems.append(Problem(field, f"неизвестный ресурс вида {ref.kind}", "unknown_id", i + 1,
                                    "resource_id", ref.resource_id))
        if teacher is not None and activity is not None:
            pairs.add((teacher, activity))
    if problems:
        raise InputError(problems, title="Ошибки в закреплённых и запрещённых назначениях")
    return pairs


def _known_pairs(region: RegionData, activities: Activities, refs: list[AssignmentRef]) -> set[tuple[int, int]]:
    """The (teacher, activity) pairs of refs whose ids still exist; the others are dropped."""
    pairs = set()
    for ref in refs:
        t = region.teachers.index.get(ref.teacher_id)
        a = activities.lookup(ref.kind, ref.resource_id)
        if t is not None and a is not None:
            pairs.add((t, a))
    return pairs


def _check_pinned_allowed(region: RegionData, params: Params, activities: Activities,
                          pinned: set[tuple[int, int]]) -> None:
    problems = []
    for t, a in sorted(pinned):
        if not allowed_mask(region, params, activities, np.array([t]), np.array([a]))[0, 0]:
            problems.append(Problem(
                "pinned", "закреплённое назначение нарушает правила (свой наставник или своя школа, "
                "дорога дольше допустимой, часы, сертификат или бюджет)", "pinned_breaks_rule",
                None, "resource_id", f"{region.teachers.ids[t]} / {KINDS[activities.kind[a]]} / {activities.ids[a]}"))
    if problems:
        raise InputError(problems, title="Ошибки в закреплённых назначениях")
