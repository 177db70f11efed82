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
import scipy.sparse as sp
from scipy.optimize import linprog

from ..options import PROGRAM
from .instance import Instance

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
        r = (prices.cover[t] * inst.activities.weights[act]).sum(axis=1) - inst.cost_points[part]
        r -= prices.capacity[act]
        r -= prices.count[t, inst.kind[part]]
        r -= prices.hours[t] * inst.hours[part]
        r -= prices.voucher[t] * inst.voucher_rub[part]
        r -= (prices.municipal[inst.municipality[part]] + prices.region) * inst.budget_rub[part]
        out[lo:lo + len(part)] = r
    return out


def _interval_cliques(start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
    """Maximal sets of pairwise overlapping intervals (inclusive), by a sweep over start points."""
    order = np.argsort(start, kind="stable")
    cliques, last = [], None
    for i in order:
        members = np.flatnonzero((start <= start[i]) & (end >= start[i]))
        if len(members) >= 2 and (last is None or not set(members.tolist()) <= last):
            cliques.append(members)
            last = set(members.tolist())
    return cliques


class MasterLP:
    """The LP over a subset of options, rebuilt when columns are added."""

    def __init__(self, inst: Instance, pairs: np.ndarray) -> None:
        self.inst = inst
        self.pair_t, self.pair_c = np.nonzero(pairs)
        self.pair_id = np.full(inst.need.shape, -1, dtype=np.int64)
        self.pair_id[self.pair_t, self.pair_c] = np.arange(len(self.pair_t))

    def solve(self, master: np.ndarray, time_limit: float) -> tuple[Prices, np.ndarray, float, float]:
        """Returns prices, LP values of the master options, the LP objective and the exact b'pi part."""
        inst = self.inst
        n_pairs, n_x = len(self.pair_t), len(master)
        t = inst.options.teacher[master]
        act = inst.options.activity[master]
        rows, cols, vals, rhs, tags = [], [], [], [], []
        next_row = 0

        def add_rows(row_ids: np.ndarray, col_ids: np.ndarray, values: np.ndarray, b: np.ndarray, tag: str,
                     keys: np.ndarray) -> None:
            nonlocal next_row
            rows.append(row_ids + next_row)
            cols.append(col_ids)
            vals.append(values)
            rhs.append(b)
            tags.append((tag, next_row, keys))
            next_row += len(b)

        # Cover: y_p - sum_a w_ac x_a <= 0.
        w = inst.activities.weights[act]
        a_idx, c_idx = np.nonzero(w)
        p = self.pair_id[t[a_idx], c_idx]
        keep = p >= 0
        cover_rows = np.concatenate([np.arange(n_pairs), p[keep]])
        cover_cols = np.concatenate([np.arange(n_pairs), n_pairs + a_idx[keep]])
        cover_vals = np.concatenate([np.ones(n_pairs), -w[a_idx[keep], c_idx[keep]]])
        add_rows(cover_rows, cover_cols, cover_vals, np.zeros(n_pairs), "cover", np.arange(n_pairs))
        # Capacity of activities that the master could overfill.
        self._add_grouped(add_rows, act, np.ones(n_x), inst.activities.capacity, "capacity", n_pairs)
        # Counts per teacher and kind.
        key = t.astype(np.int64) * 3 + inst.kind[master]
        self._add_grouped(add_rows, key, np.ones(n_x), np.tile(inst.limits, len(inst.need)), "count", n_pairs)
        # Hours and vouchers per teacher.
        self._add_grouped(add_rows, t, inst.hours[master], inst.region.teachers.max_hours, "hours", n_pairs)
        self._add_grouped(add_rows, t, inst.voucher_rub[master].astype(float),
                          inst.region.teachers.voucher_rub.astype(float), "voucher", n_pairs)
        # One session per program or site.
        group = inst.activities.group[act]
        has = group >= 0
        gkey = np.where(has, t.astype(np.int64) * (inst.activities.group.max() + 2) + group, -1)
        self._add_grouped(add_rows, gkey, np.ones(n_x), None, "group", n_pairs, skip=~has)
        # Schedule: cliques of overlapping dated sessions per teacher.
        self._add_cliques(add_rows, master, n_pairs)
        # Budgets.
        paid = inst.budget_rub[master] > 0
        limits = inst.region.budgets.municipality_rub.astype(float)
        muni = inst.municipality[master]
        self._add_grouped(add_rows, np.where(paid & (limits[muni] >= 0), muni, -1),
                          inst.budget_rub[master].astype(float), limits, "municipal", n_pairs,
                          skip=~(paid & (limits[muni] >= 0)))
        self._add_grouped(add_rows, np.where(paid, 0, -1), inst.budget_rub[master].astype(float),
                          np.array([float(inst.region.budgets.region_rub)]), "region", n_pairs, skip=~paid)

        n_rows = next_row
        matrix = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(n_rows, n_pairs + n_x))
        b = np.concatenate(rhs)
        cost = np.concatenate([inst.need[self.pair_t, self.pair_c], -inst.cost_points[master]])
        lower = np.concatenate([np.zeros(n_pairs), inst.options.pinned[master].astype(float)])
        upper = np.ones(n_pairs + n_x)

        # HiGHS through SciPy: its copy of HiGHS keeps its symbols private, so it lives beside
        # OR-Tools in one process (the highspy wheel and OR-Tools' bundled HiGHS clash).
        result = linprog(-cost, A_ub=matrix.tocsr(), b_ub=b, bounds=np.column_stack([lower, upper]),
                         method="highs-ds", options={"time_limit": max(0.1, float(time_limit)), "presolve": True})
        if result.x is not None and result.ineqlin is not None and result.ineqlin.marginals is not None:
            pi = np.maximum(0.0, -np.asarray(result.ineqlin.marginals))
            x = np.asarray(result.x)[n_pairs:]
            lp_objective = -float(result.fun)
        else:  # no usable duals in time: pi = 0 still gives a valid (weak) bound
            pi, x, lp_objective = np.zeros(n_rows), np.zeros(n_x), float("nan")

        prices = Prices(
            cover=np.zeros(inst.need.shape), capacity=np.zeros(len(inst.activities)),
            count=np.zeros((len(inst.need), 3)), hours=np.zeros(len(inst.need)), voucher=np.zeros(len(inst.need)),
            municipal=np.zeros(len(inst.region.municipalities)), region=0.0)
        for tag, start, keys in tags:
            part = pi[start:start + len(keys)]
            if tag == "cover":
                prices.cover[self.pair_t, self.pair_c] = part
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
        # Exact reduced costs of master columns use every row, groups and cliques included.
        self.master_reduced = -inst.cost_points[master] - matrix[:, n_pairs:].T @ pi
        self.y_reduced = inst.need[self.pair_t, self.pair_c] - pi[:n_pairs]
        return prices, np.clip(x, 0.0, 1.0), lp_objective, float(b @ pi)

    @staticmethod
    def _add_grouped(add_rows, keys: np.ndarray, coef: np.ndarray, limit_of: np.ndarray | None, tag: str,
                     offset: int, skip: np.ndarray | None = None) -> None:
        """One row per key whose columns could break its limit (other rows are slack and left out)."""
        valid = keys >= 0 if skip is None else ~skip
        if not valid.any():
            return
        uniq, inverse = np.unique(keys[valid], return_inverse=True)
        totals = np.bincount(inverse, weights=coef[valid])
        limits = np.ones(len(uniq)) if limit_of is None else limit_of[uniq].astype(float)
        binding = totals > limits + 1e-9
        if not binding.any():
            return
        row_of = np.full(len(uniq), -1)
        row_of[binding] = np.arange(binding.sum())
        cols = np.flatnonzero(valid)
        r = row_of[inverse]
        keep = r >= 0
        add_rows(r[keep], offset + cols[keep], coef[valid][keep], limits[binding], tag, uniq[binding])

    def _add_cliques(self, add_rows, master: np.ndarray, offset: int) -> None:
        inst = self.inst
        act = inst.options.activity[master]
        dated = np.flatnonzero(inst.activities.dated[act])
        if len(dated) < 2:
            return
        t = inst.options.teacher[master][dated]
        bounds = np.flatnonzero(np.diff(np.concatenate([[-1], t, [-1]])))
        row_ids, col_ids = [], []
        n = 0
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi - lo < 2:
                continue
            members = dated[lo:hi]
            for clique in _interval_cliques(inst.activities.start[act[members]], inst.activities.end[act[members]]):
                row_ids.append(np.full(len(clique), n))
                col_ids.append(offset + members[clique])
                n += 1
        if n:
            r = np.concatenate(row_ids)
            add_rows(r, np.concatenate(col_ids), np.ones(len(r)), np.ones(n), "clique", np.arange(n))


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
    pairs = coverable_pairs(inst)
    lp = MasterLP(inst, pairs)
    master = initial_master(inst, incumbent)
    best: BoundResult | None = None
    for rounds in range(1, max_rounds + 1):
        remaining = time_limit - (time.perf_counter() - started)
        prices, x, lp_objective, b_pi = lp.solve(master, remaining)
        reduced = reduced_costs(inst, prices)
        reduced[master] = lp.master_reduced
        pinned = inst.options.pinned
        bound = b_pi + np.maximum(0.0, lp.y_reduced).sum() \
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
        master = np.union1d(master, entering[rank < 5])
    assert best is not None
    best.seconds = time.perf_counter() - started
    return best
