"""A proved upper bound from the LP relaxation, evaluated safely over every option.

The LP (HiGHS, through SciPy) is solved over a *master* subset of options. Its row prices pi >= 0 then give a
bound for the full problem by weak duality, whatever their accuracy: for any plan v,

    objective(v) <= b'pi + sum_j max(l_j r_j, u_j r_j),   r_j = c_j - (A'pi)_j

(y variables are the covers, x the options; l = u = 1 for pinned options). For options outside
the master, r is computed from the prices of the rows they would share (cover, capacity, counts,
hours, voucher, budgets); leaving out a row with a nonnegative coefficient only raises r, so the
bound stays valid. Options with positive r join the master and the LP is solved again (column
generation) while time allows. The same r gives reduced-cost fixing: an option with
bound + r < incumbent cannot be in any better plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from .instance import Instance
from .linear import LinearModel, build_linear


def relative_gap(objective: float, bound: float) -> float:
    """How far from optimal a plan can be, proved: (bound - objective) / max(1, |bound|)
    (summary.json's `gap`, docs/plan-files.md)."""
    return (bound - objective) / max(1.0, abs(bound))

_CHUNK = 200_000


@dataclass
class Prices:
    """Row prices of the LP, in the shapes the reduced-cost formula needs."""

    cover: np.ndarray  # teachers x competencies (mu)
    capacity: np.ndarray  # per activity (lambda)
    count: np.ndarray  # teachers x 3 kinds
    hours: np.ndarray  # per teacher
    voucher: np.ndarray  # per teacher
    municipal: np.ndarray  # per municipality
    region: float


@dataclass
class BoundResult:
    bound: float
    fixing: np.ndarray  # per option: how much forcing it in lowers `bound` (<= 0); see _count_limited
    lp_value: np.ndarray  # LP value of each option (0 outside the master)
    lp_objective: float
    iterations: int
    master_size: int
    seconds: float
    coupling_price: np.ndarray | None = None  # per option: the LP's price of the capacity and money it uses


def coverable_pairs(inst: Instance) -> np.ndarray:
    """(t, c) with need > 0 that at least one option of t addresses: the y variables."""
    touch = np.zeros(inst.need.shape, dtype=bool)
    for lo in range(0, inst.n_options, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        w = inst.activities.weights[inst.options.activity[sl]] > 0
        rows, cols = np.nonzero(w)
        touch[inst.options.teacher[sl][rows], cols] = True
    return touch & (inst.need > 0)


def reduced_costs(inst: Instance, prices: Prices, idx: np.ndarray | None = None) -> np.ndarray:
    """r~ of options from the prices of the rows every option shares with its teacher."""
    idx = np.arange(inst.n_options) if idx is None else idx
    out = np.empty(len(idx))
    for lo in range(0, len(idx), _CHUNK):
        part = idx[lo:lo + _CHUNK]
        t = inst.options.teacher[part]
        act = inst.options.activity[part]
        r = (prices.cover[t] * inst.activities.weights[act]).sum(axis=1) - inst.solver_cost[part]
        r -= prices.capacity[act]
        r -= prices.count[t, inst.kind[part]]
        r -= prices.hours[t] * inst.hours[part]
        r -= prices.voucher[t] * inst.voucher_rub[part]
        r -= (prices.municipal[inst.municipality[part]] + prices.region) * inst.budget_rub[part]
        out[lo:lo + len(part)] = r
    return out


def solve_lp(inst: Instance, model: LinearModel,
             time_limit: float) -> tuple[Prices, np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
    """Solves the LP; returns prices, LP x values, LP objective, row prices pi, exact r of x and y columns."""
    n_rows = len(model.rhs)
    # HiGHS through SciPy: its copy of HiGHS keeps its symbols private, so it lives beside
    # OR-Tools in one process (highspy 1.15.x and OR-Tools' bundled HiGHS clash; the decomposition's
    # master uses highspy 1.16.0, which does not: engine.solver.master).
    result = linprog(-model.cost, A_ub=model.matrix, b_ub=model.rhs,
                     bounds=np.column_stack([model.lower, model.upper]), method="highs-ds",
                     options={"time_limit": max(0.1, float(time_limit)), "presolve": True})
    if result.x is not None and result.ineqlin is not None and result.ineqlin.marginals is not None:
        pi = np.maximum(0.0, -np.asarray(result.ineqlin.marginals))
        x = np.asarray(result.x)[model.n_pairs:]
        lp_objective = -float(result.fun)
    else:  # no usable duals in time: pi = 0 still gives a valid (weak) bound
        pi, x, lp_objective = np.zeros(n_rows), np.zeros(len(model.columns)), float("nan")
    prices = Prices(
        cover=np.zeros(inst.need.shape), capacity=np.zeros(len(inst.activities)),
        count=np.zeros((len(inst.need), 3)), hours=np.zeros(len(inst.need)), voucher=np.zeros(len(inst.need)),
        municipal=np.zeros(len(inst.region.municipalities)), region=0.0)
    for tag, start, keys in model.tags:
        part = pi[start:start + len(keys)]
        if tag == "cover":
            prices.cover[model.pair_t, model.pair_c] = part
        elif tag == "capacity":
            prices.capacity[keys] = part
        elif tag == "count":
            prices.count[keys // 3, keys % 3] = part
        elif tag == "hours":
            prices.hours[keys] = part
        elif tag == "voucher":
            prices.voucher[keys] = part
        elif tag == "municipal":
            prices.municipal[keys] = part
        elif tag == "region":
            prices.region = float(part.sum())
    # Exact reduced costs of the model's own columns use every row (groups, cliques, cuts too).
    reduced_all = model.cost - model.matrix.T @ pi
    return (prices, np.clip(x, 0.0, 1.0), lp_objective, pi, reduced_all[model.n_pairs:],
            reduced_all[:model.n_pairs])


def _count_limited(inst: Instance, reduced: np.ndarray, teacher_part: bool = False):
    """The options' part of the Lagrangian bound with each teacher's count limits kept.

    For any plan, sum_a r_a x_a <= sum over (teacher, kind) of its best `limit` positive r (pinned
    options first, at their r): a teacher takes at most `limit` options of a kind. Without this a
    teacher with 300 options of positive r would add all 300 to the bound.

    Returns that part (per teacher with `teacher_part`, else summed) and, per option, how much
    forcing it in would lower it: 0 for the options already counted, r - (the smallest counted r)
    for the others; bound + this < incumbent means the option is in no better plan.
    """
    pinned = inst.options.pinned
    key = np.where(pinned, np.inf, reduced)
    order = np.lexsort((-key, inst.kind, inst.options.teacher))
    t, k = inst.options.teacher[order], inst.kind[order]
    starts = np.flatnonzero(np.r_[True, (t[1:] != t[:-1]) | (k[1:] != k[:-1])])
    lengths = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, lengths)
    r = reduced[order]
    counted = (rank < inst.limits[k]) & (pinned[order] | (r > 0))
    contribution = np.where(counted, r, 0.0)
    per_teacher = np.bincount(t, weights=contribution, minlength=len(inst.need))
    # The smallest counted value of each group, or 0 where a slot is still free.
    smallest = np.where(counted, r, np.inf)
    group_min = np.minimum.reduceat(smallest, starts) if len(starts) else np.zeros(0)
    group_count = np.add.reduceat(counted.astype(np.int64), starts) if len(starts) else np.zeros(0)
    free_slot = group_count < inst.limits[k[starts]]
    displaced = np.where(free_slot | ~np.isfinite(group_min), 0.0, np.maximum(group_min, 0.0))
    fixing = np.empty(len(order))
    fixing[order] = np.where(counted, 0.0, r - np.repeat(displaced, lengths))
    return (per_teacher if teacher_part else float(per_teacher.sum())), fixing


# Per teacher, the prices of her own rows (cover, counts, hours, voucher, one per program/site,
# schedule) may all be scaled by any s >= 0 and the bound stays valid: those rows concern her
# alone. s = 0 gives her need (the trivial bound), s = 1 the LP's prices; the better is taken for
# each teacher, so the bound is never worse than either. Prices from a restricted LP overprice
# cover for options the LP never saw, which s corrects teacher by teacher.
_TEACHER_SCALES = (0.0, 0.5, 1.0)


def _teacher_scaled_bound(inst: Instance, prices: "Prices", model: LinearModel, pi: np.ndarray,
                          reduced: np.ndarray, y_reduced: np.ndarray, scales=_TEACHER_SCALES):
    """b'pi of the coupling rows + sum over teachers of min over s of her part; and fixing values."""
    n_t = len(inst.need)
    owner = model.row_teacher()
    own = owner >= 0
    coupling_bpi = float(model.rhs[~own] @ pi[~own])
    teacher_bpi = np.bincount(owner[own], weights=model.rhs[own] * pi[own], minlength=n_t)
    act = inst.options.activity
    coupling = inst.solver_cost + prices.capacity[act] \
        + (prices.municipal[inst.municipality] + prices.region) * inst.budget_rub
    own_value = reduced + coupling  # r(s) = s * own_value - coupling
    y_need = model.cost[:model.n_pairs]
    y_mu = y_need - y_reduced
    best = np.full(n_t, np.inf)
    best_scale = np.ones(n_t)
    for scale in scales:
        y_part = np.bincount(model.pair_t, weights=np.maximum(0.0, y_need - scale * y_mu), minlength=n_t)
        options_part, _ = _count_limited(inst, scale * own_value - coupling, teacher_part=True)
        total = scale * teacher_bpi + y_part + options_part
        better = total < best
        best[better], best_scale[better] = total[better], scale
    _, fixing = _count_limited(inst, best_scale[inst.options.teacher] * own_value - coupling)
    return coupling_bpi + float(best.sum()), fixing


def initial_master(inst: Instance, incumbent: np.ndarray, per_kind: tuple[int, int, int] = (6, 6, 10)) -> np.ndarray:
    """The incumbent's and pinned options plus each teacher's best few of each kind taken alone."""
    value = inst.standalone_value(np.arange(inst.n_options))
    keep = incumbent | inst.options.pinned
    order = np.lexsort((-value, inst.kind, inst.options.teacher))
    t, k = inst.options.teacher[order], inst.kind[order]
    group_start = np.flatnonzero(np.r_[True, (t[1:] != t[:-1]) | (k[1:] != k[:-1])])
    rank = np.arange(len(order)) - np.repeat(group_start, np.diff(np.r_[group_start, len(order)]))
    limit = np.asarray(per_kind)[k]
    keep[order[(rank < limit) & (value[order] > 0)]] = True
    return np.flatnonzero(keep)


def lp_bound(inst: Instance, incumbent: np.ndarray, time_limit: float, max_rounds: int = 6) -> BoundResult:
    started = time.perf_counter()
    if inst.n_options == 0:  # nothing can be assigned: the empty plan is the only one
        return BoundResult(0.0, np.zeros(0), np.zeros(0), 0.0, 0, 0, 0.0)
    pairs = coverable_pairs(inst)
    # The LP must answer within its share of the time: fewer columns per teacher in big regions.
    small = len(inst.need) <= 3000
    master = initial_master(inst, incumbent, (6, 6, 10) if small else (1, 1, 2))
    per_round = 5 if small else 1
    best: BoundResult | None = None
    for rounds in range(1, max_rounds + 1):
        remaining = time_limit - (time.perf_counter() - started)
        model = build_linear(inst, master, pairs)
        prices, x, lp_objective, pi, master_reduced, y_reduced = solve_lp(inst, model, remaining)
        reduced = reduced_costs(inst, prices)
        reduced[master] = master_reduced
        bound, fixing = _teacher_scaled_bound(inst, prices, model, pi, reduced, y_reduced,
                                              _TEACHER_SCALES if small else (0.0, 1.0))
        bound += 1e-9 * max(1.0, abs(bound))  # floating-point safety margin
        lp_value = np.zeros(inst.n_options)
        lp_value[master] = x
        if best is None or bound < best.bound:
            act = inst.options.activity
            coupling_price = prices.capacity[act] \
                + (prices.municipal[inst.municipality] + prices.region) * inst.budget_rub
            best = BoundResult(bound, fixing, lp_value, lp_objective, rounds, len(master),
                               time.perf_counter() - started, coupling_price)
        # Column generation: options the LP would want, a few per teacher.
        entering = np.flatnonzero(reduced > 1e-6)
        entering = entering[~np.isin(entering, master)]
        if len(entering) == 0 or time.perf_counter() - started > 0.6 * time_limit:
            break
        order = np.lexsort((-reduced[entering], inst.options.teacher[entering]))
        entering = entering[order]
        t = inst.options.teacher[entering]
        first = np.r_[True, t[1:] != t[:-1]]
        rank = np.arange(len(t)) - np.maximum.accumulate(np.where(first, np.arange(len(t)), 0))
        master = np.union1d(master, entering[rank < per_round])
    assert best is not None
    best.seconds = time.perf_counter() - started
    return best
