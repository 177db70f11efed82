"""The floor for the left-out (`min_reached_share`): a hard lower bound, per group of teachers, on the
share of the group's teachers with need who get at least one assignment.

Groups: `low_results` (teachers of low_results schools) and `due` (SPEC §3). For a group G with n
teachers with need and a share s, the target is ceil(s * n) teachers reached. The floor couples
teachers (one row over a whole group), so it is met after the main solve, here and only here:

    reached:  r_t <= sum of t's assignments x_ta,   0 <= r_t <= 1   (r_t = 1 only if t is reached)
    floor:    sum over t in G of r_t + short_G >= target_G,         short_G >= 0
    maximise  objective - M * sum_G short_G,   M > any objective a plan can gain or lose

so the plan reaches as many as the rules allow up to the target (short_G is the shortfall) and, within
that, is the best plan. Up to FULL_MODEL_OPTIONS options this is one MIP over every option (exact,
with HiGHS' bound); beyond, MIPs over neighbourhoods: unreached members of a short group together
with the teachers holding the seats and the money they could use, everyone else fixed. A change is
kept only if it lowers the shortfall, or keeps it and raises the objective.

The price of the floor is the objective of the plan without it less the objective with it. The plan
without it is the main solve's (its time was the request's less FLOOR_SHARE); `price_at_most` is
the main solve's proved bound less the objective with the floor: a proved upper bound on the price.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from ..needs import training_due
from ..rules import PlanArrays, violations
from .bound import relative_gap
from .greedy import Residuals, greedy
from .instance import Instance
from .linear import build_linear
from .mip import MIP_REL_GAP

FLOOR_SHARE = 0.3  # of a request's time kept for the floor when one is asked for
FULL_MODEL_OPTIONS = 40_000  # up to this many options, one exact MIP of everything with the floor
NEIGHBOURHOOD_OPTIONS = 12_000  # options per neighbourhood MIP beyond that
DISPLACE_TRIES = 8  # a teacher's best options tried by the displacement's first pass
OPTIMAL_TOLERANCE = 1e-6


@dataclass
class FloorGroup:
    name: str
    members: np.ndarray  # bool over teachers: in the group and with need
    share: float
    target: int  # teachers to reach: ceil(share * members)


def floor_groups(inst: Instance) -> list[FloorGroup]:
    """The groups with a floor asked for, their members with need and their targets."""
    region, params = inst.region, inst.params
    has_need = inst.need.sum(axis=1) > 0
    masks = {"low_results": region.schools.low_results[region.teachers.school],
             "due": training_due(region, params)}
    out = []
    for name, share in params.min_reached_share.active().items():
        members = masks[name] & has_need
        out.append(FloorGroup(name, members, share, int(math.ceil(share * members.sum() - 1e-9))))
    return out


def reached(inst: Instance, chosen: np.ndarray) -> np.ndarray:
    """Per teacher: at least one assignment."""
    return np.bincount(inst.options.teacher[chosen], minlength=len(inst.need)) > 0


def shortfalls(groups: list[FloorGroup], is_reached: np.ndarray) -> np.ndarray:
    return np.array([max(0, g.target - int((g.members & is_reached).sum())) for g in groups])


def meet_floor(result, deadline: float, on_progress=None):
    """The Result with the floor met as far as the rules allow; `statistics["floor"]` reports it.

    `result` is engine.solver.solve's Result for the same request without the floor."""
    inst = result.instance
    groups = floor_groups(inst)
    if not groups:
        return result
    started = time.perf_counter()
    chosen = result.chosen
    short = shortfalls(groups, reached(inst, chosen))
    bound = result.bound
    method = "met by the plan without the floor"
    if short.any():
        if inst.n_options <= FULL_MODEL_OPTIONS:
            method = "exact MIP with the floor"
            chosen, short, floor_bound = _full_model(inst, groups, chosen, deadline)
            if floor_bound is not None:
                bound = min(bound, floor_bound)
        else:
            method = "displacement and neighbourhood MIPs with the floor"
            moved, displaced = _displace(inst, groups, chosen, deadline)
            if _better(inst, groups, moved, chosen):
                chosen = moved
            else:
                displaced = np.zeros(0, dtype=np.int64)
            chosen, short = _neighbourhoods(inst, groups, chosen, deadline, on_progress, displaced)
        if inst.n_options <= FULL_MODEL_OPTIONS or deadline - time.perf_counter() > 1.0:
            topped = greedy(inst, chosen)  # only adds: keeps everyone reached
            if inst.solver_objective(topped) > inst.solver_objective(chosen) + 1e-9:
                chosen = topped
    objective = inst.objective(chosen)
    short = shortfalls(groups, reached(inst, chosen))
    bound = max(bound, objective)
    proved = relative_gap(objective, bound) <= OPTIMAL_TOLERANCE
    is_reached = reached(inst, chosen)
    has_option = np.diff(inst.options.first) > 0
    report = {
        "method": method,
        "seconds": round(time.perf_counter() - started, 3),
        "objective_without_floor": result.objective,
        "objective_with_floor": objective,
        "price": result.objective - objective,
        "price_at_most": max(0.0, result.bound - objective),
        "groups": {g.name: {
            "share": g.share, "teachers_with_need": int(g.members.sum()), "target": g.target,
            "reached": int((g.members & is_reached).sum()),
            "reached_without_floor": int((g.members & reached(inst, result.chosen)).sum()),
            "met": bool(s == 0), "shortfall": int(s),
            "without_any_option": int((g.members & ~has_option).sum()),
        } for g, s in zip(groups, short)},
    }
    statistics = dict(result.statistics, floor=report)
    return replace(result, chosen=chosen, objective=objective, bound=bound,
                   status="OPTIMAL" if proved else "FEASIBLE", statistics=statistics,
                   solve_seconds=result.solve_seconds + report["seconds"])


def _floor_mip(inst: Instance, groups: list[FloorGroup], candidates: np.ndarray, chosen: np.ndarray,
               time_limit: float):
    """The floored MIP over the teachers owning `candidates`, everyone else fixed as in `chosen`.
    Returns (new choice over candidates or None, HiGHS' dual bound of the penalised model, M)."""
    opts = inst.options
    teachers = np.unique(opts.teacher[candidates])
    inside = np.zeros(len(inst.need), dtype=bool)
    inside[teachers] = True
    outside_chosen = chosen & ~inside[opts.teacher]
    residuals = Residuals(inst, outside_chosen)
    pairs = np.zeros(inst.need.shape, dtype=bool)
    pairs[teachers] = inst.need[teachers] > 0
    model = build_linear(inst, candidates, pairs, capacity=residuals.capacity, municipal=residuals.municipal,
                         region=residuals.region)
    reached_outside = reached(inst, outside_chosen)
    in_any = np.zeros(len(inst.need), dtype=bool)
    for g in groups:
        in_any |= g.members & inside
    r_teachers = np.flatnonzero(in_any)
    r_col = {t: i for i, t in enumerate(r_teachers)}
    n_base, n_r, n_s = model.matrix.shape[1], len(r_teachers), len(groups)
    # r_t - sum of t's x <= 0
    x_teacher = opts.teacher[candidates]
    x_rows = np.array([r_col.get(t, -1) for t in x_teacher], dtype=np.int64)
    has_row = x_rows >= 0
    link = sp.csr_matrix((np.r_[np.ones(n_r), -np.ones(has_row.sum())],
                          (np.r_[np.arange(n_r), x_rows[has_row]],
                           np.r_[n_base + np.arange(n_r), model.n_pairs + np.flatnonzero(has_row)])),
                         shape=(n_r, n_base + n_r + n_s))
    # -sum over G inside of r_t - short_G <= -(target_G - reached outside)
    rows, cols, vals, rhs = [], [], [], []
    for k, g in enumerate(groups):
        members = [r_col[t] for t in np.flatnonzero(g.members & inside)]
        rows += [k] * (len(members) + 1)
        cols += [n_base + m for m in members] + [n_base + n_r + k]
        vals += [-1.0] * (len(members) + 1)
        rhs.append(-(g.target - int((g.members & reached_outside).sum())))
    floor_rows = sp.csr_matrix((vals, (rows, cols)), shape=(n_s, n_base + n_r + n_s))
    base = sp.hstack([model.matrix, sp.csr_matrix((model.matrix.shape[0], n_r + n_s))])
    matrix = sp.vstack([base, link, floor_rows]).tocsr()
    upper_rhs = np.r_[model.rhs, np.zeros(n_r), rhs]
    # M: more than the whole objective the sub-problem can gain or lose.
    penalty = 1.0 + float(inst.need[teachers].sum()) + float(np.abs(inst.solver_cost[candidates]).sum())
    cost = np.r_[model.cost, np.zeros(n_r), -penalty * np.ones(n_s)]
    lower = np.r_[model.lower, np.zeros(n_r + n_s)]
    upper = np.r_[model.upper, np.ones(n_r), np.full(n_s, np.inf)]
    integrality = np.r_[np.zeros(model.n_pairs), np.ones(len(candidates)), np.zeros(n_r + n_s)]
    result = milp(-cost, constraints=LinearConstraint(matrix, -np.inf, upper_rhs), bounds=Bounds(lower, upper),
                  integrality=integrality,
                  options={"time_limit": max(0.1, float(time_limit)), "mip_rel_gap": MIP_REL_GAP,
                           "presolve": True, "disp": False})
    dual = getattr(result, "mip_dual_bound", None)
    dual_bound = None if dual is None or not np.isfinite(dual) or result.status != 0 else -float(dual)
    if result.x is None:
        return None, None, penalty
    x = np.asarray(result.x)[model.n_pairs:model.n_pairs + len(candidates)] > 0.5
    return x, dual_bound, penalty


def _better(inst: Instance, groups: list[FloorGroup], new: np.ndarray, old: np.ndarray) -> bool:
    """Lexicographic: a smaller total shortfall, or the same and a higher objective."""
    if violations(inst.region, inst.params, inst.activities,
                  PlanArrays(inst.options.teacher[new], inst.options.activity[new])):
        return False  # within HiGHS' tolerances but not exactly within the rules: never handed out
    new_short = shortfalls(groups, reached(inst, new)).sum()
    old_short = shortfalls(groups, reached(inst, old)).sum()
    if new_short != old_short:
        return new_short < old_short
    return inst.solver_objective(new) > inst.solver_objective(old) + 1e-9


def _full_model(inst: Instance, groups: list[FloorGroup], chosen: np.ndarray, deadline: float):
    candidates = np.arange(inst.n_options)
    x, dual_bound, penalty = _floor_mip(inst, groups, candidates, chosen, deadline - time.perf_counter())
    floor_bound = None
    if x is not None and _better(inst, groups, x, chosen):
        chosen = x
    short = shortfalls(groups, reached(inst, chosen))
    if dual_bound is not None:
        # Proved optimal, the penalised model's bound D bounds objective - M * shortfall of every plan, and
        # its shortfall is the least any plan has: every plan with that shortfall has objective <= D + M * it.
        floor_bound = dual_bound + penalty * short.sum() + 2 * MIP_REL_GAP * max(1.0, abs(dual_bound))
    return chosen, short, floor_bound


def _neighbourhoods(inst: Instance, groups: list[FloorGroup], chosen: np.ndarray, deadline: float, on_progress,
                    displaced: np.ndarray):
    """Unreached members of short groups, and who holds what they could use, re-planned together; once the
    floor is met, the teachers the displacement moved and who holds what they could use (the floor's rows
    keep it met), to win back objective with the time left."""
    rng = np.random.default_rng(inst.params.seed)
    opts = inst.options
    n_teachers = len(inst.need)
    has_option = np.diff(opts.first) > 0
    option_count = np.diff(opts.first)
    batch_size = 200
    while deadline - time.perf_counter() > 0.5:
        is_reached = reached(inst, chosen)
        short = shortfalls(groups, is_reached)
        if short.any():
            wanting = np.zeros(n_teachers, dtype=bool)
            for g, s in zip(groups, short):
                if s:
                    wanting |= g.members & ~is_reached & has_option
            pool = np.flatnonzero(wanting)
            if len(pool) == 0:
                break  # nobody left who could be reached at all
        else:
            pool = displaced
            if len(pool) == 0:
                break
        batch = rng.permutation(pool)[:batch_size]
        fits = np.cumsum(option_count[batch]) <= NEIGHBOURHOOD_OPTIONS // 2
        fits[0] = True
        batch = batch[fits]
        mine = np.isin(opts.teacher, batch)
        wanted_acts = np.unique(opts.activity[mine])
        holders = np.unique(opts.teacher[chosen & np.isin(opts.activity, wanted_acts)])
        # who spends the money of the batch's municipalities (stipends, internship costs)
        towns = np.unique(inst.region.teacher_municipality[batch])
        payers = np.unique(opts.teacher[chosen & (inst.budget_rub > 0) & np.isin(inst.municipality, towns)])
        others = rng.permutation(np.setdiff1d(np.union1d(holders, payers), batch))
        room = NEIGHBOURHOOD_OPTIONS - int(option_count[batch].sum())
        others = others[np.cumsum(option_count[others]) <= max(0, room)]
        teachers = np.union1d(batch, others)
        candidates = np.flatnonzero(np.isin(opts.teacher, teachers))
        x, _, _ = _floor_mip(inst, groups, candidates, chosen, min(10.0, deadline - time.perf_counter()))
        if x is not None:
            new = chosen.copy()
            new[candidates] = x
            if _better(inst, groups, new, chosen):
                chosen = new
                if on_progress:
                    on_progress("floor", inst.objective(chosen))
                continue
        batch_size = max(10, batch_size // 2)
    return chosen, shortfalls(groups, reached(inst, chosen))


def _displace(inst: Instance, groups: list[FloorGroup], chosen: np.ndarray,
              deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """A fast pass for large regions: each unreached member of a short group (most valuable first) takes
    their best option that room can be made for, by taking the seat (and, where the money is short, the
    budget) from the least valuable assignments of teachers who stay reached or are in no floor group."""
    opts = inst.options
    start, chosen = chosen, chosen.copy()
    residuals = Residuals(inst, chosen)
    counts = np.bincount(opts.teacher[chosen], minlength=len(inst.need))
    in_floor = np.zeros(len(inst.need), dtype=bool)
    for g in groups:
        in_floor |= g.members
    holders: dict[int, set[int]] = {}
    payers: dict[int, set[int]] = {}
    for o in np.flatnonzero(chosen & ~opts.pinned).tolist():
        holders.setdefault(int(opts.activity[o]), set()).add(o)
        if inst.budget_rub[o] > 0:
            payers.setdefault(int(inst.municipality[o]), set()).add(o)

    def removable(o: int) -> bool:
        v = opts.teacher[o]
        return counts[v] >= 2 or not in_floor[v]

    displaced: set[int] = set()

    def remove(o: int) -> None:
        displaced.add(int(opts.teacher[o]))
        chosen[o] = False
        residuals.capacity[opts.activity[o]] += 1
        residuals.municipal[inst.municipality[o]] += inst.budget_rub[o]
        residuals.region += inst.budget_rub[o]
        counts[opts.teacher[o]] -= 1
        holders[int(opts.activity[o])].discard(o)
        payers.get(int(inst.municipality[o]), set()).discard(o)

    def add(o: int) -> None:
        chosen[o] = True
        residuals.use(opts.activity[o], inst.municipality[o], inst.budget_rub[o])
        counts[opts.teacher[o]] += 1
        holders.setdefault(int(opts.activity[o]), set()).add(o)
        if inst.budget_rub[o] > 0:
            payers.setdefault(int(inst.municipality[o]), set()).add(o)

    def money_short(o: int) -> tuple[float, float]:
        need = float(inst.budget_rub[o])
        return need - residuals.municipal[inst.municipality[o]], need - residuals.region

    def make_room(o: int) -> list[int]:
        """Assignments removed so that option o fits (empty if it fits as is); None if it cannot."""
        removed: list[int] = []
        if residuals.capacity[opts.activity[o]] <= 0:
            seats = [h for h in holders.get(int(opts.activity[o]), ()) if removable(h)]
            if not seats:
                return None
            cheapest = min(seats, key=lambda h: value[h])
            remove(cheapest)
            removed.append(cheapest)
        for _ in range(4):  # money: the least valuable per rouble first, in the teacher's municipality
            municipal, region = money_short(o)
            if municipal <= 0 and region <= 0:
                return removed
            pool = payers.get(int(inst.municipality[o]), set()) if municipal > 0 else \
                set().union(*payers.values()) if payers else set()
            pool = [p for p in pool if removable(p) and p not in removed]
            if not pool:
                break
            cheapest = min(pool, key=lambda p: value[p] / max(1.0, float(inst.budget_rub[p])))
            remove(cheapest)
            removed.append(cheapest)
        municipal, region = money_short(o)
        if municipal <= 0 and region <= 0:
            return removed
        for r in removed:
            add(r)
        return None

    is_reached = reached(inst, chosen)
    short = shortfalls(groups, is_reached)
    wanting = np.zeros(len(inst.need), dtype=bool)
    for g, s in zip(groups, short):
        if s:
            wanting |= g.members & ~is_reached
    teachers = np.flatnonzero(wanting & (np.diff(opts.first) > 0))
    # What an option is worth alone, for the options that may move: the chosen ones and the wanting teachers'.
    value = np.zeros(inst.n_options)
    movable = np.flatnonzero(chosen | np.isin(opts.teacher, teachers))
    value[movable] = inst.standalone_value(movable)
    best = np.array([value[opts.first[t]:opts.first[t + 1]].max() for t in teachers]) if len(teachers) else []
    order = teachers[np.argsort(-np.asarray(best), kind="stable")].tolist()
    for tries in (DISPLACE_TRIES, None):  # each one's best options first; then any option, for those still out
        for t in order:
            if time.perf_counter() > deadline or not shortfalls(groups, counts > 0).any():
                break
            if counts[t] or not any(s and g.members[t] for g, s in zip(groups, shortfalls(groups, counts > 0))):
                continue
            mine = np.arange(opts.first[t], opts.first[t + 1])
            for o in mine[np.argsort(-value[mine], kind="stable")][:tries].tolist():
                if make_room(o) is not None:
                    add(o)
                    break
    # who gave up a seat or money takes what is still open for them (greedy only adds)
    if displaced:
        chosen = greedy(inst, chosen, order=np.array(sorted(displaced), dtype=np.int64))
    return chosen, np.unique(opts.teacher[chosen != start])
