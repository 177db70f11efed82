"""Fit one teacher: the best few routes open to a new teacher now, without moving anyone else.

No planning instance is built (on a region of 20,000 teachers that takes many seconds): the new
teacher's options are computed directly, one row of `allowed_mask`, against what the existing
plan leaves (seats, mentor places, municipal and regional budgets). Routes are then enumerated by
a beam search over the teacher's best options, checking every per-teacher rule (counts, one
session per program or site, dates, hours, voucher, the budget left), and ranked by their value
in the plan's objective: need covered - cost / rub_per_point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .changes import NewTeacher, with_teachers
from .needs import deficit_gaps, teacher_priority
from .options import Activities, allowed_mask, build_activities
from .params import KINDS, Params
from .problems import InputError, Problem
from .region import RegionData, date_of

PER_KIND = 24  # best options of each kind kept for the search, by value taken alone
PER_COMPETENCY = 4  # and the best few for each competency in need, so complements are not lost
BEAM = 250


@dataclass
class Step:
    kind: str
    resource_id: str
    start: str
    end: str
    hours: float
    cost_rub: int
    funded_by: str
    addresses: list[str]


@dataclass
class Route:
    rank: int
    value: float  # objective contribution: gain - cost_rub / rub_per_point
    gain: float  # need covered
    cost_rub: int
    hours: float
    steps: list[Step]
    cover: dict[str, float] = field(default_factory=dict)  # competency -> cover after the route

    def as_dict(self) -> dict:
        return {"rank": self.rank, "value": round(self.value, 6), "gain": round(self.gain, 6),
                "cost_rub": self.cost_rub, "hours": self.hours, "cover": self.cover,
                "steps": [step.__dict__ for step in self.steps]}


@dataclass
class Fit:
    teacher_id: str
    need_total: float
    options: int  # options open now (rules 3-5, single limits, seats and budget left)
    routes: list[Route]
    seconds: float

    def as_dict(self) -> dict:
        return {"teacher_id": self.teacher_id, "need_total": round(self.need_total, 6), "options": self.options,
                "seconds": round(self.seconds, 4), "routes": [r.as_dict() for r in self.routes]}


def fit_teacher(region: RegionData, params: Params, plan_teacher: np.ndarray, plan_activity: np.ndarray,
                teacher: NewTeacher, top: int = 5, activities: Activities | None = None) -> Fit:
    """`plan_teacher`, `plan_activity`: the existing plan as indices (see engine.explain.plan_indices)."""
    import time

    started = time.perf_counter()
    problems = []
    if teacher.teacher_id in region.teachers.index:
        problems.append(Problem("teacher", "учитель с таким id уже есть в регионе", "duplicate", None,
                                "teacher_id", teacher.teacher_id))
    if teacher.school_id not in region.schools.index:
        problems.append(Problem("teacher", "неизвестная школа", "unknown_id", None, "school_id", teacher.school_id))
    for c, score in teacher.scores.items():
        if c not in region.competencies.index:
            problems.append(Problem("teacher", "неизвестная компетенция", "unknown_id", None, "scores", c))
        elif not 0 <= score <= 100:
            problems.append(Problem("teacher", "балл от 0 до 100", "out_of_range", None, f"scores.{c}", str(score)))
    if problems:
        raise InputError(problems, title="Ошибки в описании нового учителя")
    acts = activities or build_activities(region)
    grown = with_teachers(region, [teacher])
    t = len(region.teachers)
    need = _need_row(grown, params, t)
    municipality = int(grown.teacher_municipality[t])

    used = np.bincount(np.asarray(plan_activity, dtype=np.int64), minlength=len(acts))
    spent = np.bincount(region.teacher_municipality[np.asarray(plan_teacher, dtype=np.int64)],
                        weights=acts.budget_rub[np.asarray(plan_activity, dtype=np.int64)],
                        minlength=len(region.municipalities))
    limit = region.budgets.municipality_rub[municipality]
    money = min(np.inf if limit < 0 else float(limit - spent[municipality]),
                float(region.budgets.region_rub - spent.sum()))

    ok = allowed_mask(grown, params, acts, np.array([t]), np.arange(len(acts)))[0]
    ok &= (acts.weights[:, need > 0] > 0).any(axis=1)
    ok &= acts.capacity - used > 0
    ok &= acts.budget_rub <= money
    forbidden = {acts.lookup(f.kind, f.resource_id) for f in params.forbidden if f.teacher_id == teacher.teacher_id}
    ok[[a for a in forbidden if a is not None]] = False
    options = np.flatnonzero(ok)
    cost_points = acts.cost_rub / params.rub_per_point
    alone = (need[None, :] * np.minimum(1.0, acts.weights[options])).sum(axis=1) - cost_points[options]
    options, alone = options[alone > 0], alone[alone > 0]
    candidates = _shortlist(acts, need, options, alone)
    routes = _search(grown, params, acts, t, need, candidates, money, top)
    steps_of = _describe(grown, acts, need, municipality)
    out = []
    for rank, (members, value, gain) in enumerate(routes, start=1):
        cover = np.minimum(1.0, acts.weights[members].sum(axis=0))
        out.append(Route(
            rank=rank, value=value, gain=gain, cost_rub=int(acts.cost_rub[members].sum()),
            hours=float(acts.hours[members].sum()), steps=[steps_of(a) for a in members],
            cover={region.competencies.ids[c]: round(float(cover[c]), 6) for c in np.flatnonzero(need > 0)}))
    return Fit(teacher.teacher_id, float(need.sum()), int(len(options)), out, time.perf_counter() - started)


def _need_row(grown: RegionData, params: Params, t: int) -> np.ndarray:
    """need(t, c) of SPEC §5 for one teacher (need_matrix would compute it for every teacher)."""
    return deficit_gaps(grown.teachers.scores[t], params.deficit_threshold) * teacher_priority(grown, params)[t]


def _shortlist(acts: Activities, need: np.ndarray, options: np.ndarray, alone: np.ndarray) -> np.ndarray:
    keep = set()
    kind = acts.kind[options]
    for k in range(3):
        of_kind = np.flatnonzero(kind == k)
        keep.update(options[of_kind[np.argsort(-alone[of_kind], kind="stable")[:PER_KIND]]].tolist())
    for c in np.flatnonzero(need > 0):
        score = acts.weights[options, c] * need[c]
        good = np.flatnonzero(score > 0)
        keep.update(options[good[np.argsort(-score[good], kind="stable")[:PER_COMPETENCY]]].tolist())
    return np.array(sorted(keep), dtype=np.int64)


def _search(region: RegionData, params: Params, acts: Activities, t: int, need: np.ndarray,
            candidates: np.ndarray, money: float, top: int) -> list[tuple[list[int], float, float]]:
    """Beam search over routes built in candidate order (each set once); returns the top routes."""
    if len(candidates) == 0:
        return []
    limits = np.array([1, params.max_internships, params.max_programs])
    max_hours = float(region.teachers.max_hours[t])
    voucher = float(region.teachers.voucher_rub[t])
    w = acts.weights[candidates]
    kind = acts.kind[candidates]
    group = acts.group[candidates]
    dated = acts.dated[candidates]
    start, end = acts.start[candidates], acts.end[candidates]
    hours = acts.hours[candidates]
    price = acts.voucher_rub[candidates].astype(float)
    budget = acts.budget_rub[candidates].astype(float)
    cost = acts.cost_rub[candidates] / params.rub_per_point
    n = len(candidates)
    # A state: (members as positions, last position, cover, hours, voucher, budget, counts)
    states = [((), -1, np.zeros(need.shape), 0.0, 0.0, 0.0, np.zeros(3, np.int64))]
    found: dict[tuple, tuple[float, float]] = {}
    while states:
        pending, parents = [], []
        for members, last, cover, h, v, b, counts in states:
            base = (need * np.minimum(1.0, cover)).sum() - cost[list(members)].sum()
            ok = np.arange(n) > last
            ok &= hours + h <= max_hours + 1e-9
            ok &= price + v <= voucher
            ok &= budget + b <= money
            ok &= counts[kind] < limits[kind]
            for m in members:
                if group[m] >= 0:
                    ok &= group != group[m]
                if dated[m]:
                    ok &= ~(dated & (start <= end[m]) & (end >= start[m]))
            idx = np.flatnonzero(ok)
            value = (need[None, :] * np.minimum(1.0, cover[None, :] + w[idx])).sum(axis=1) \
                - cost[list(members)].sum() - cost[idx]
            useful = value > base + 1e-12  # a step that adds nothing is never part of a good route
            pending.append((len(parents), idx[useful], value[useful]))
            parents.append((members, cover, h, v, b, counts))
        if not pending:
            break
        owner = np.concatenate([np.full(len(i), p) for p, i, _ in pending])
        added = np.concatenate([i for _, i, _ in pending])
        values = np.concatenate([val for _, _, val in pending])
        if len(values) == 0:
            break
        best = np.argsort(-values, kind="stable")[:BEAM]
        states = []
        for j in best.tolist():
            members, cover, h, v, b, counts = parents[owner[j]]
            i = int(added[j])
            child_counts = counts.copy()
            child_counts[kind[i]] += 1
            new_cover = cover + w[i]
            states.append((members + (i,), i, new_cover, h + hours[i], v + price[i], b + budget[i], child_counts))
            found[members + (i,)] = (float(values[j]), float((need * np.minimum(1.0, new_cover)).sum()))
    ranked = sorted(found.items(), key=lambda item: (-item[1][0], item[0]))
    # Routes that differ only in the session of the same program or site (other dates) count once.
    seen, out = set(), []
    for members, (value, gain) in ranked:
        signature = tuple(sorted((int(kind[m]), int(group[m]) if group[m] >= 0 else int(candidates[m]))
                                 for m in members))
        if signature in seen:
            continue
        seen.add(signature)
        out.append(([int(candidates[m]) for m in members], value, gain))
        if len(out) == top:
            break
    return out


def _describe(region: RegionData, acts: Activities, need: np.ndarray, municipality: int):
    comps = region.competencies.ids

    def step(a: int) -> Step:
        k = int(acts.kind[a])
        return Step(kind=KINDS[k], resource_id=acts.ids[a], start=date_of(acts.start[a]).isoformat(),
                    end=date_of(acts.end[a]).isoformat(), hours=float(acts.hours[a]), cost_rub=int(acts.cost_rub[a]),
                    funded_by="voucher" if k == 2 else f"municipality:{region.municipalities.ids[municipality]}",
                    addresses=[comps[c] for c in np.flatnonzero((acts.weights[a] > 0) & (need > 0))])

    return step
