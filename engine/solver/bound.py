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

from ..options import PROGRAM
from .instance import Instance
from .linear import LinearModel, build_linear

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
    reduced: np.ndarray  # r~ per option (valid for fixing together with `bound`)
    lp_value: np.ndarray  # LP value of each option (0 outside the master)
    lp_objective: float
    iterations: int
    master_size: int
    seconds: float


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


def solve_lp(inst: Instance, model: LinearModel, time_limit: float) -> tuple[Prices, np.ndarray, float, float, np.ndarray, np.ndarray]:
    """Solves the LP; returns prices, LP x values, LP objective, b'pi, exact r of x and of y columns."""
    n_rows = len(model.rhs)
    # HiGHS through SciPy: its copy of HiGHS keeps its symbols private, so it lives beside
    # OR-Tools in one process (the highspy wheel and OR-Tools' bundled HiGHS clash).
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
    return (prices, np.clip(x, 0.0, 1.0), lp_objective, float(model.rhs @ pi),
            reduced_all[model.n_pairs:], reduced_all[:model.n_pairs])


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
    master = initial_master(inst, incumbent, (6, 6, 10) if small else (2, 2, 3))
    per_round = 5 if small else 1
    best: BoundResult | None = None
    for rounds in range(1, max_rounds + 1):
        remaining = time_limit - (time.perf_counter() - started)
        model = build_linear(inst, master, pairs)
        prices, x, lp_objective, b_pi, master_reduced, y_reduced = solve_lp(inst, model, remaining)
        reduced = reduced_costs(inst, prices)
        reduced[master] = master_reduced
        pinned = inst.options.pinned
        bound = b_pi + np.maximum(0.0, y_reduced).sum() \
            + np.where(pinned, reduced, np.maximum(0.0, reduced)).sum()
        bound += 1e-9 * max(1.0, abs(bound))  # floating-point safety margin
        lp_value = np.zeros(inst.n_options)
        lp_value[master] = x
        if best is None or bound < best.bound:
            best = BoundResult(bound, reduced, lp_value, lp_objective, rounds, len(master),
                               time.perf_counter() - started)
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
