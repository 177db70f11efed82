"""The peers marshrut is measured against, on the same options and rules (SPEC §4) and objective (§5).

Each peer is `peer(region, params, time_limit, on_progress=None) -> PeerResult`: a boolean vector over
`Instance.options` (or None when it found no plan), a status, a proved bound where it has one, the
seconds from the loaded region to the plan (building the instance included, as for the engine),
and the objective-over-time points it reported.

- greedy_by_need: the methodologist's spreadsheet. Teachers by total need, highest first; for each
  of the teacher's needs, highest first, the first activity in catalogue order (mentors, then site
  sessions, then program sessions, in file order) that addresses it and still fits every rule.
  No look at costs, no second pass.
- textbook_cpsat: one BoolVar per option, every rule as a linear constraint, cover as
  z_tc <= sum(w x) with z_tc in [0, 100] (weights in hundredths), one model, 2 workers, no hints.
- plain_mip: the same model as a MILP (x binary, y_tc in [0, 1]) in HiGHS through
  scipy.optimize.milp. SciPy exposes no incumbent callback, so its progress is read from HiGHS's own
  log (one line per new incumbent) when a log file is given.

Options (`Instance.options`) are the (teacher, activity) pairs that rules 3-5 and the one-assignment
limits allow and that address a need: a preprocessing every peer would do, and the same for all.
Timefold is in `benchmarks.timefold_peer` (an optional extra).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from marshrut.engine.params import KINDS, Params
from marshrut.engine.region import RegionData, date_of
from marshrut.engine.solver.instance import Instance

MENTOR, INTERNSHIP, PROGRAM = 0, 1, 2
WEIGHT_UNITS = 100  # cover in hundredths: the bundle's weights have two decimals
OBJECTIVE_UNITS = 10**6  # integer units per objective point per weight unit (CP-SAT)

Progress = Callable[[float, float, float | None], None]  # elapsed, objective, bound


@dataclass
class PeerResult:
    instance: Instance
    chosen: np.ndarray | None  # bool over instance.options; None: no plan
    status: str  # OPTIMAL | FEASIBLE | NO_PLAN
    bound: float | None  # proved upper bound on the objective of any plan, if the peer has one
    seconds: float
    history: list[tuple[float, float, float | None]] = field(default_factory=list)
    statistics: dict = field(default_factory=dict)

    @property
    def objective(self) -> float | None:
        return None if self.chosen is None else self.instance.objective(self.chosen)


class _Clock:
    def __init__(self, time_limit: float, on_progress: Progress | None) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + time_limit
        self.on_progress = on_progress
        self.history: list[tuple[float, float, float | None]] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def report(self, objective: float, bound: float | None, at: float | None = None) -> None:
        point = (self.elapsed() if at is None else at, float(objective), None if bound is None else float(bound))
        self.history.append(point)
        if self.on_progress:
            self.on_progress(*point)


# ---------------------------------------------------------------------------------------------
# Greedy by need: the spreadsheet
# ---------------------------------------------------------------------------------------------

def greedy_by_need(region: RegionData, params: Params, time_limit: float,
                   on_progress: Progress | None = None) -> PeerResult:
    clock = _Clock(time_limit, on_progress)
    inst = Instance.build(region, params)
    opts, acts = inst.options, inst.activities
    chosen = opts.pinned.copy()
    capacity = acts.capacity - np.bincount(opts.activity[chosen], minlength=len(acts))
    limits = region.budgets.municipality_rub.astype(float)
    municipal = np.where(limits >= 0, limits, np.inf)
    municipal -= np.bincount(inst.municipality[chosen], weights=inst.budget_rub[chosen], minlength=len(limits))
    regional = float(region.budgets.region_rub) - float(inst.budget_rub[chosen].sum())
    order = np.argsort(-inst.need.sum(axis=1), kind="stable")
    for teacher in order.tolist():
        lo, hi = int(opts.first[teacher]), int(opts.first[teacher + 1])
        need = inst.need[teacher]
        if lo == hi:
            continue
        a = opts.activity[lo:hi]  # sorted by activity index: catalogue order
        kind, group = inst.kind[lo:hi], acts.group[a]
        dated, start, end = acts.dated[a], acts.start[a], acts.end[a]
        hours, price, budget = inst.hours[lo:hi], inst.voucher_rub[lo:hi], inst.budget_rub[lo:hi]
        mine = chosen[lo:hi].copy()
        cover = acts.weights[a[mine]].sum(axis=0)
        counts = np.bincount(kind[mine], minlength=3)
        hours_left = region.teachers.max_hours[teacher] - hours[mine].sum()
        voucher_left = region.teachers.voucher_rub[teacher] - price[mine].sum()
        m = inst.municipality[lo]
        for c in np.argsort(-need, kind="stable").tolist():
            if need[c] <= 0 or (counts >= inst.limits).all():
                break
            if cover[c] >= 1:
                continue
            fits = (acts.weights[a, c] > 0) & ~mine & (capacity[a] > 0)
            fits &= counts[kind] < inst.limits[kind]
            fits &= (hours <= hours_left + 1e-9) & (price <= voucher_left)
            fits &= budget <= min(municipal[m], regional)
            taken_groups = group[mine & (group >= 0)]
            if len(taken_groups):
                fits &= ~np.isin(group, taken_groups)
            for i in np.flatnonzero(mine & dated):
                fits &= ~(dated & (start <= end[i]) & (end >= start[i]))
            first = np.flatnonzero(fits)
            if len(first) == 0:
                continue
            i = int(first[0])
            mine[i] = chosen[lo + i] = True
            cover += acts.weights[a[i]]
            counts[kind[i]] += 1
            hours_left -= hours[i]
            voucher_left -= price[i]
            capacity[a[i]] -= 1
            municipal[m] -= budget[i]
            regional -= budget[i]
    clock.report(inst.objective(chosen), None)
    return PeerResult(inst, chosen, "FEASIBLE", None, clock.elapsed(), clock.history,
                      {"options": inst.n_options})


# ---------------------------------------------------------------------------------------------
# The textbook model, shared by CP-SAT and the MIP
# ---------------------------------------------------------------------------------------------

@dataclass
class RuleRows:
    """Every rule as rows `A x <= upper` over the option booleans, plus the cover pairs."""

    matrix: sp.csr_matrix  # rows x options
    upper: np.ndarray
    row_slices: dict[str, slice]
    pair_matrix: sp.csr_matrix  # cover pairs x options: weight(a, c) of option (t, a) in pair (t, c)
    pair_need: np.ndarray
    cost: np.ndarray  # objective points per option
    pinned: np.ndarray

    def counts(self) -> dict[str, int]:
        return {name: s.stop - s.start for name, s in self.row_slices.items()}


def rule_rows(inst: Instance) -> RuleRows:
    opts, acts, region = inst.options, inst.activities, inst.region
    n = inst.n_options
    t = opts.teacher.astype(np.int64)
    a = opts.activity.astype(np.int64)
    blocks: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # name, row, col, val, upper

    def grouped(name: str, key: np.ndarray, members: np.ndarray, values: np.ndarray, upper_of_key) -> None:
        """One row per distinct key, kept only where the members could exceed the upper limit."""
        if len(members) == 0:
            return
        uniq, inverse = np.unique(key, return_inverse=True)
        upper = np.asarray(upper_of_key(uniq), dtype=float)
        total = np.bincount(inverse, weights=values, minlength=len(uniq))
        keep = total > upper + 1e-9
        if not keep.any():
            return
        new_id = np.cumsum(keep) - 1
        sel = keep[inverse]
        blocks.append((name, new_id[inverse[sel]], members[sel], values[sel], upper[keep]))

    every = np.arange(n)
    ones = np.ones(n)
    # 1. capacity
    grouped("capacity", a, every, ones, lambda k: acts.capacity[k])
    # 2. counts per kind, and one session per site / program
    grouped("counts", t * 3 + inst.kind, every, ones, lambda k: inst.limits[k % 3])
    g = acts.group[a]
    has = np.flatnonzero(g >= 0)
    grouped("one_per_group", t[has] * (g.max() + 1) + g[has], has, np.ones(len(has)), lambda k: np.ones(len(k)))
    # 6. schedule: the dated options of a teacher running on each session start day, at most one
    dated = np.flatnonzero(acts.dated[a])
    if len(dated):
        days = np.unique(acts.start[acts.dated])
        lo = np.searchsorted(days, acts.start[a[dated]])
        hi = np.searchsorted(days, acts.end[a[dated]], side="right")
        span = hi - lo
        members = np.repeat(dated, span)
        day_index = np.repeat(lo - np.cumsum(span) + span, span) + np.arange(span.sum())
        grouped("schedule", t[members] * len(days) + day_index, members, np.ones(len(members)),
                lambda k: np.ones(len(k)))
    # 7. hours, 8. voucher
    grouped("hours", t, every, inst.hours, lambda k: region.teachers.max_hours[k])
    paid = np.flatnonzero(inst.voucher_rub > 0)
    grouped("voucher", t[paid], paid, inst.voucher_rub[paid].astype(float), lambda k: region.teachers.voucher_rub[k])
    # 9. budgets: each municipality with a row, and the region
    funded = np.flatnonzero(inst.budget_rub > 0)
    municipal = region.budgets.municipality_rub
    with_row = funded[municipal[inst.municipality[funded]] >= 0]
    grouped("municipal_budget", inst.municipality[with_row], with_row, inst.budget_rub[with_row].astype(float),
            lambda k: municipal[k])
    grouped("region_budget", np.zeros(len(funded), np.int64), funded, inst.budget_rub[funded].astype(float),
            lambda k: np.full(len(k), float(region.budgets.region_rub)))

    rows, cols, vals, uppers, slices = [], [], [], [], {}
    offset = 0
    for name, r, c, v, u in blocks:
        rows.append(r + offset)
        cols.append(c)
        vals.append(v)
        uppers.append(u)
        slices[name] = slice(offset, offset + len(u))
        offset += len(u)
    matrix = sp.csr_matrix((np.concatenate(vals) if vals else np.zeros(0),
                            (np.concatenate(rows) if rows else np.zeros(0, np.int64),
                             np.concatenate(cols) if cols else np.zeros(0, np.int64))), shape=(offset, n))
    pair_matrix, pair_need = cover_pairs(inst)
    return RuleRows(matrix, np.concatenate(uppers) if uppers else np.zeros(0), slices, pair_matrix, pair_need,
                    inst.cost_points.astype(float), opts.pinned.copy())


def cover_pairs(inst: Instance) -> tuple[sp.csr_matrix, np.ndarray]:
    """Pairs (t, c) with need > 0 that some option of t addresses, and weight(a, c) per option."""
    acts = inst.activities
    n_comp = inst.need.shape[1]
    w = sp.csr_matrix(acts.weights)
    per_act = np.diff(w.indptr)
    a = inst.options.activity.astype(np.int64)
    span = per_act[a]
    option = np.repeat(np.arange(inst.n_options), span)
    entry = np.repeat(w.indptr[a] - np.cumsum(span) + span, span) + np.arange(span.sum())
    comp = w.indices[entry]
    weight = w.data[entry]
    teacher = inst.options.teacher[option].astype(np.int64)
    keep = inst.need[teacher, comp] > 0
    option, comp, weight, teacher = option[keep], comp[keep], weight[keep], teacher[keep]
    uniq, pair = np.unique(teacher * n_comp + comp, return_inverse=True)
    matrix = sp.csr_matrix((weight, (pair, option)), shape=(len(uniq), inst.n_options))
    return matrix, inst.need[uniq // n_comp, uniq % n_comp]


def _integral(values: np.ndarray, units: int) -> bool:
    scaled = np.asarray(values, dtype=float) * units
    return bool(np.all(np.abs(scaled - np.round(scaled)) < 1e-6))


# ---------------------------------------------------------------------------------------------
# Textbook CP-SAT
# ---------------------------------------------------------------------------------------------

class _GaveUp(Exception):
    pass


def textbook_cpsat(region: RegionData, params: Params, time_limit: float,
                   on_progress: Progress | None = None, workers: int = 2) -> PeerResult:
    from ortools.sat.python import cp_model

    clock = _Clock(time_limit, on_progress)
    inst = Instance.build(region, params)
    stats: dict = {"options": inst.n_options}
    try:
        model, x, scale, exact = _cpsat_model(inst, clock, stats)
    except _GaveUp:
        stats["note"] = "the model was not built within the time limit"
        return PeerResult(inst, None, "NO_PLAN", None, clock.elapsed(), clock.history, stats)
    stats["build_seconds"] = round(clock.elapsed(), 3)
    if clock.left() <= 0.05:
        stats["note"] = "no time left to solve after building the model"
        return PeerResult(inst, None, "NO_PLAN", None, clock.elapsed(), clock.history, stats)

    class Callback(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            clock.report(self.ObjectiveValue() / scale, self.BestObjectiveBound() / scale if exact else None)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, clock.left())
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = params.seed
    status = solver.Solve(model, Callback())
    stats["cpsat_status"] = solver.StatusName(status)
    stats["cpsat_wall"] = round(solver.WallTime(), 3)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return PeerResult(inst, None, "NO_PLAN", None, clock.elapsed(), clock.history, stats)
    values = np.array(solver.BooleanValues(x), dtype=bool) if hasattr(solver, "BooleanValues") else \
        np.array([solver.BooleanValue(v) for v in x], dtype=bool)
    bound = solver.BestObjectiveBound() / scale if exact else None
    return PeerResult(inst, values, "OPTIMAL" if status == cp_model.OPTIMAL else "FEASIBLE", bound,
                      clock.elapsed(), clock.history, stats)


def _cpsat_model(inst: Instance, clock: _Clock, stats: dict):
    """Integer data: weights in hundredths (exact), hours in hundredths, roubles; needs rounded up and
    costs down so that the model's bound is a bound on the true objective when hours are exact."""
    from ortools.sat.python import cp_model

    rows = rule_rows(inst)
    stats["rows"] = rows.counts()
    stats["pairs"] = len(rows.pair_need)
    if clock.left() <= 0:
        raise _GaveUp
    exact = _integral(inst.hours, 100) and _integral(inst.region.teachers.max_hours, 100)
    model = cp_model.CpModel()
    n = inst.n_options
    x = []
    for i in range(n):
        x.append(model.NewBoolVar(""))
        if i % 50_000 == 0 and clock.left() <= 0:
            raise _GaveUp
    for i in np.flatnonzero(rows.pinned).tolist():
        model.Add(x[i] == 1)
    matrix = rows.matrix
    # hours rows get hundredths; every other row is already integral (counts, roubles)
    hours_rows = np.zeros(matrix.shape[0], dtype=bool)
    hours_rows[rows.row_slices.get("hours", slice(0, 0))] = True
    for r in range(matrix.shape[0]):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        cols, vals = matrix.indices[lo:hi], matrix.data[lo:hi]
        if hours_rows[r]:
            coefs = np.ceil(vals * 100 - 1e-9).astype(np.int64)
            upper = math.floor(rows.upper[r] * 100 + 1e-9)
        else:
            coefs = np.round(vals).astype(np.int64)
            upper = math.floor(rows.upper[r] + 1e-9)
        model.Add(cp_model.LinearExpr.WeightedSum([x[c] for c in cols.tolist()], coefs.tolist()) <= upper)
        if r % 20_000 == 0 and clock.left() <= 0:
            raise _GaveUp
    pairs = rows.pair_matrix
    need_coef = np.ceil(rows.pair_need * OBJECTIVE_UNITS - 1e-9).astype(np.int64)
    z_terms = []
    for p in range(pairs.shape[0]):
        lo, hi = pairs.indptr[p], pairs.indptr[p + 1]
        z = model.NewIntVar(0, WEIGHT_UNITS, "")
        wq = np.ceil(pairs.data[lo:hi] * WEIGHT_UNITS - 1e-9).astype(np.int64)
        model.Add(z <= cp_model.LinearExpr.WeightedSum([x[c] for c in pairs.indices[lo:hi].tolist()], wq.tolist()))
        z_terms.append(z)
        if p % 20_000 == 0 and clock.left() <= 0:
            raise _GaveUp
    cost_coef = np.floor(rows.cost * WEIGHT_UNITS * OBJECTIVE_UNITS + 1e-9).astype(np.int64)
    model.Maximize(cp_model.LinearExpr.WeightedSum(z_terms + x, need_coef.tolist() + (-cost_coef).tolist()))
    return model, x, float(WEIGHT_UNITS * OBJECTIVE_UNITS), exact


# ---------------------------------------------------------------------------------------------
# Plain MIP: HiGHS through SciPy
# ---------------------------------------------------------------------------------------------

MIP_REL_GAP = 1e-6  # the engine's tolerance for "proved optimal"


def plain_mip(region: RegionData, params: Params, time_limit: float, on_progress: Progress | None = None,
              log_path: str | None = None) -> PeerResult:
    """`log_path`: capture HiGHS's log there (file descriptor 1 is redirected while it runs) and read
    the incumbents from it; only useful in a process of its own."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    clock = _Clock(time_limit, on_progress)
    inst = Instance.build(region, params)
    rows = rule_rows(inst)
    n, n_pairs = inst.n_options, len(rows.pair_need)
    stats: dict = {"options": n, "pairs": n_pairs, "rows": rows.counts()}
    # variables: x (options), then y (cover pairs); minimise cost x - need y
    c = np.r_[rows.cost, -rows.pair_need]
    a_rules = sp.hstack([rows.matrix, sp.csr_matrix((rows.matrix.shape[0], n_pairs))])
    a_cover = sp.hstack([-rows.pair_matrix, sp.identity(n_pairs, format="csr")])
    matrix = sp.vstack([a_rules, a_cover]).tocsr()
    upper = np.r_[rows.upper, np.zeros(n_pairs)]
    integrality = np.r_[np.ones(n), np.zeros(n_pairs)]
    bounds = Bounds(np.r_[rows.pinned.astype(float), np.zeros(n_pairs)], np.ones(n + n_pairs))
    stats["build_seconds"] = round(clock.elapsed(), 3)
    left = clock.left()
    if left <= 0.05:
        stats["note"] = "no time left to solve after building the model"
        return PeerResult(inst, None, "NO_PLAN", None, clock.elapsed(), clock.history, stats)
    build = clock.elapsed()
    options = {"time_limit": left, "mip_rel_gap": MIP_REL_GAP, "disp": log_path is not None}
    constraints = LinearConstraint(matrix, -np.inf, upper) if matrix.shape[0] else ()
    if log_path:
        saved = os.dup(1)
        with open(log_path, "w") as log:
            os.dup2(log.fileno(), 1)
            try:
                res = milp(c, integrality=integrality, bounds=bounds, constraints=constraints, options=options)
            finally:
                os.dup2(saved, 1)
                os.close(saved)
        for at, objective, bound in _highs_incumbents(log_path):
            clock.report(objective, bound, at=build + at)
    else:
        res = milp(c, integrality=integrality, bounds=bounds, constraints=constraints, options=options)
    stats["highs_status"] = int(res.status)
    stats["highs_message"] = str(res.message)
    dual = getattr(res, "mip_dual_bound", None)
    bound = None if dual is None or not np.isfinite(dual) else -float(dual)
    if res.x is None:
        return PeerResult(inst, None, "NO_PLAN", bound, clock.elapsed(), clock.history, stats)
    chosen = res.x[:n] > 0.5
    status = "OPTIMAL" if res.status == 0 else "FEASIBLE"
    if status == "OPTIMAL" and bound is None:
        bound = -float(res.fun)
    clock.report(inst.objective(chosen), bound)
    return PeerResult(inst, chosen, status, bound, clock.elapsed(), clock.history, stats)


_NUMBER = r"(-?(?:inf|\d+(?:\.\d+)?(?:e[+-]?\d+)?))"


def _highs_incumbents(log_path: str) -> list[tuple[float, float, float | None]]:
    """(time, objective, bound) of each line of HiGHS's B&B table that reports a primal solution.

    The table's columns end with: BestBound BestSol Gap | Cuts InLp Confl. | LpIters Time, in the
    minimisation form (objective = -BestSol, bound = -BestBound)."""
    out = []
    line_re = re.compile(r"^\s*[A-Za-z]?\s*\d+\s+\d+\s+\d+\s+[\d.]+%\s+" + _NUMBER + r"\s+" + _NUMBER
                         + r"\s+(?:[\d.]+%|inf|Large)\s+.*?([\d.]+)s\s*$", re.IGNORECASE)
    best = math.inf
    try:
        text = open(log_path, errors="replace").read().splitlines()
    except OSError:
        return out
    for line in text:
        m = line_re.match(line)
        if not m:
            continue
        dual, primal, at = m.group(1), m.group(2), float(m.group(3))
        if primal.lower() == "inf":
            continue
        primal_v = float(primal)
        if primal_v < best - 1e-12:
            best = primal_v
            bound = None if "inf" in dual.lower() else -float(dual)
            out.append((at, -primal_v, bound))
    return out


# ---------------------------------------------------------------------------------------------
# Plans as SPEC §6 assignments
# ---------------------------------------------------------------------------------------------

ASSIGNMENT_COLUMNS = ["teacher_id", "kind", "resource_id", "start", "end", "hours", "cost_rub", "funded_by"]


def assignments_frame(inst: Instance, chosen: np.ndarray) -> pd.DataFrame:
    """SPEC §6 `assignments.csv` rows of a plan given as a boolean vector over options."""
    region, acts = inst.region, inst.activities
    idx = np.flatnonzero(chosen)
    t, a = inst.options.teacher[idx], inst.options.activity[idx]
    kind = acts.kind[a]
    municipality_ids = np.asarray(region.municipalities.ids, dtype=object)
    funded = ["voucher" if k == PROGRAM else f"municipality:{municipality_ids[m]}"
              for k, m in zip(kind.tolist(), region.teacher_municipality[t].tolist())]
    hours = [int(h) if float(h).is_integer() else round(float(h), 4) for h in acts.hours[a]]
    return pd.DataFrame({
        "teacher_id": np.asarray(region.teachers.ids, dtype=object)[t],
        "kind": np.asarray(KINDS, dtype=object)[kind],
        "resource_id": np.asarray(acts.ids, dtype=object)[a],
        "start": [date_of(d).isoformat() for d in acts.start[a]],
        "end": [date_of(d).isoformat() for d in acts.end[a]],
        "hours": hours,
        "cost_rub": acts.cost_rub[a].astype(np.int64),
        "funded_by": funded,
    }, columns=ASSIGNMENT_COLUMNS)


PEERS = {"greedy": greedy_by_need, "cpsat": textbook_cpsat, "mip": plain_mip}
