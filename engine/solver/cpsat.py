"""CP-SAT over a set of teachers (all of them, or a neighbourhood with everyone else fixed).

Coefficients are scaled to integers so that the model's objective is never below the true one
(needs rounded up, costs rounded down, weights exact or rounded up), and constraints are exact
where the data allow (hours with two decimals, whole roubles). So a CP-SAT bound divided by the
scale is a proved bound on the true objective whenever `exact` is true.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from .linear import interval_cliques
from .greedy import Residuals
from .instance import Instance

MAX_OBJECTIVE_SCALE = 10**9  # integer units per objective point, when the magnitudes allow


def objective_scale(inst: Instance) -> int:
    """As fine as int64 allows: rounding then costs far less than the optimality tolerance."""
    magnitude = float(inst.need.sum()) + float(np.abs(inst.solver_cost).sum()) + 1.0
    return int(max(10**4, min(MAX_OBJECTIVE_SCALE, 10 ** np.floor(np.log10(1e17 / magnitude)))))


@dataclass
class SubResult:
    chosen: np.ndarray  # over the candidate options
    improved: bool
    status: str
    model_bound: float | None  # proved bound on the true objective of the submodel, if exact
    seconds: float


def _scale_for(values: np.ndarray, max_power: int = 4) -> tuple[int, bool]:
    """Smallest 10^k making every value integral, and whether that is exact."""
    for k in range(max_power + 1):
        scaled = values * 10**k
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return 10**k, True
    return 10**max_power, False


class _Progress(cp_model.CpSolverSolutionCallback):
    def __init__(self, report: Callable[[float, float], None], scale: float, offset: float) -> None:
        super().__init__()
        self._report, self._scale, self._offset = report, scale, offset

    def on_solution_callback(self) -> None:
        self._report(self.ObjectiveValue() / self._scale + self._offset,
                     self.BestObjectiveBound() / self._scale + self._offset)


def solve_teachers(inst: Instance, candidates: np.ndarray, chosen: np.ndarray, time_limit: float, *,
                   workers: int = 2, seed: int = 0, on_solution: Callable[[float, float], None] | None = None,
                   full: bool = False, rel_gap: float = 0.0) -> SubResult:
    """Re-optimises the routes of the teachers owning `candidates`, everyone else's fixed as in `chosen`;
    stops once within `rel_gap` of its own bound (the whole model's solve passes `gap_limit`).

    `candidates` must contain every option those teachers currently hold.
    """
    started = time.perf_counter()
    opts = inst.options
    teachers = np.unique(opts.teacher[candidates])
    outside = chosen.copy()
    outside[candidates] = False
    outside &= ~np.isin(opts.teacher, teachers)
    residuals = Residuals(inst, outside)

    t = opts.teacher[candidates]
    act = opts.activity[candidates]
    acts = inst.activities
    scale = objective_scale(inst)
    model = cp_model.CpModel()
    x = [model.NewBoolVar("") for _ in range(len(candidates))]
    for i in np.flatnonzero(opts.pinned[candidates]):
        model.Add(x[i] == 1)

    weight_scale, weights_exact = _scale_for(np.unique(acts.weights[act][acts.weights[act] > 0]))
    hours_scale, hours_exact = _scale_for(np.unique(np.r_[inst.hours[candidates],
                                                          inst.region.teachers.max_hours[teachers]]), 2)
    exact = weights_exact and hours_exact

    # Cover: z_tc <= sum of scaled weights, z_tc <= weight_scale.
    objective_terms, objective_coefs = [], []
    w = acts.weights[act]
    rows, comps = np.nonzero((w > 0) & (inst.need[t] > 0))
    if len(rows):
        pair = t[rows].astype(np.int64) * inst.need.shape[1] + comps
        uniq, inverse = np.unique(pair, return_inverse=True)
        wq = np.ceil(w[rows, comps] * weight_scale - 1e-9).astype(np.int64)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
        need_coef = np.ceil(inst.need[uniq // inst.need.shape[1], uniq % inst.need.shape[1]]
                            * scale / weight_scale - 1e-9).astype(np.int64)
        hinted = chosen[candidates]
        for p in range(len(uniq)):
            members = order[bounds[p]:bounds[p + 1]]
            z = model.NewIntVar(0, weight_scale, "")
            model.Add(z <= sum(int(wq[m]) * x[rows[m]] for m in members))
            # A complete hint (covers too) is what lets CP-SAT start from the incumbent.
            model.AddHint(z, int(min(weight_scale, sum(int(wq[m]) for m in members if hinted[rows[m]]))))
            objective_terms.append(z)
            objective_coefs.append(int(need_coef[p]))
    cost_coef = np.floor(inst.solver_cost[candidates] * scale + 1e-9).astype(np.int64)
    objective_terms += x
    objective_coefs += (-cost_coef).tolist()
    model.Maximize(cp_model.LinearExpr.WeightedSum(objective_terms, objective_coefs))

    # Per teacher: counts, one session per program or site, schedule, hours, voucher.
    first = np.searchsorted(t, teachers)
    last = np.searchsorted(t, teachers, side="right")
    kind = inst.kind[candidates]
    group = acts.group[act]
    for lo, hi, teacher in zip(first.tolist(), last.tolist(), teachers.tolist()):
        idx = np.arange(lo, hi)
        for k in range(3):
            of_kind = idx[kind[idx] == k]
            if len(of_kind) > inst.limits[k]:
                model.Add(sum(x[i] for i in of_kind) <= int(inst.limits[k]))
        grouped = idx[group[idx] >= 0]
        if len(grouped) > 1:
            g = group[grouped]
            for value in _repeated(g):
                model.AddAtMostOne(x[i] for i in grouped[g == value])
        dated = idx[acts.dated[act[idx]]]
        if len(dated) > 1:
            for clique in interval_cliques(acts.start[act[dated]], acts.end[act[dated]]):
                model.AddAtMostOne(x[i] for i in dated[clique])
        hours = np.ceil(inst.hours[candidates][idx] * hours_scale - 1e-9).astype(np.int64)
        limit = math.floor(inst.region.teachers.max_hours[teacher] * hours_scale + 1e-9)
        if hours.sum() > limit:
            model.Add(sum(int(h) * x[i] for h, i in zip(hours, idx)) <= limit)
        price = inst.voucher_rub[candidates][idx]
        voucher = int(inst.region.teachers.voucher_rub[teacher])
        if price.sum() > voucher:
            model.Add(sum(int(p) * x[i] for p, i in zip(price, idx) if p) <= voucher)

    # Coupling: capacities and budgets left by everyone outside.
    order = np.argsort(act, kind="stable")
    uniq, starts = np.unique(act[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    for a, s, e in zip(uniq.tolist(), starts.tolist(), ends.tolist()):
        if e - s > residuals.capacity[a]:
            model.Add(sum(x[i] for i in order[s:e]) <= max(0, int(residuals.capacity[a])))
    budget = inst.budget_rub[candidates]
    paid = np.flatnonzero(budget > 0)
    muni = inst.municipality[candidates]
    for m in np.unique(muni[paid]).tolist():
        members = paid[muni[paid] == m]
        if np.isfinite(residuals.municipal[m]) and budget[members].sum() > residuals.municipal[m]:
            model.Add(sum(int(budget[i]) * x[i] for i in members) <= int(residuals.municipal[m]))
    if budget[paid].sum() > residuals.region:
        model.Add(sum(int(budget[i]) * x[i] for i in paid) <= int(residuals.region))

    current = chosen[candidates]
    for i, v in enumerate(current.tolist()):
        model.AddHint(x[i], bool(v))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit - (time.perf_counter() - started))
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    solver.parameters.relative_gap_limit = rel_gap
    if full:
        solver.parameters.log_search_progress = False
    callback = _Progress(on_solution, scale, 0.0) if on_solution and full else None
    status = solver.Solve(model, callback)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return SubResult(current, False, solver.StatusName(status), None, time.perf_counter() - started)
    new = np.array([solver.BooleanValue(v) for v in x], dtype=bool)
    before = inst.routes_value(candidates, current)
    after = inst.routes_value(candidates, new)
    improved = after > before + 1e-9
    bound = solver.BestObjectiveBound() / scale if exact else None
    return SubResult(new if improved else current, improved, solver.StatusName(status), bound,
                     time.perf_counter() - started)


def _repeated(values: np.ndarray) -> np.ndarray:
    uniq, counts = np.unique(values, return_counts=True)
    return uniq[counts > 1]

