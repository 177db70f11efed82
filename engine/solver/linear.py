"""The planning problem as a linear model over a set of option columns (for the LP and for MIPs).

    max  sum_p need_p y_p - sum_a cost_a x_a
    s.t. y_p - sum_a w_ap x_a <= 0           (cover; y_p <= 1 is its bound)
         capacity, counts, one session per program/site, schedule cliques, hours, voucher, budgets
         valid knapsack cuts: per teacher, options that take more than half of the voucher or of the
         hours are pairwise incompatible, so at most one of them is chosen

Rows whose columns can never break them are left out. Capacities and budgets can be overridden
(what is left by teachers outside a neighbourhood).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .instance import Instance


@dataclass
class LinearModel:
    columns: np.ndarray  # option indices of the x columns
    pair_t: np.ndarray  # the y columns: (teacher, competency) pairs
    pair_c: np.ndarray
    matrix: sp.csr_matrix  # rows x (pairs + columns)
    rhs: np.ndarray
    cost: np.ndarray  # to maximise
    lower: np.ndarray
    upper: np.ndarray
    tags: list[tuple[str, int, np.ndarray]]  # (row kind, first row, keys of its rows)
    group_key_base: int = 1  # group rows' keys are teacher * base + program/site group

    def row_teacher(self) -> np.ndarray:
        """The teacher each row belongs to, -1 for rows that tie teachers (capacity, budgets)."""
        owner = np.full(len(self.rhs), -1, dtype=np.int64)
        for tag, start, keys in self.tags:
            rows = slice(start, start + len(keys))
            if tag == "cover":
                owner[rows] = self.pair_t
            elif tag == "count":
                owner[rows] = keys // 3
            elif tag in ("hours", "voucher", "cut", "clique"):
                owner[rows] = keys
            elif tag == "group":
                owner[rows] = keys // self.group_key_base
        return owner

    @property
    def n_pairs(self) -> int:
        return len(self.pair_t)


def interval_cliques(start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
    """Maximal sets of pairwise overlapping intervals (inclusive), by a sweep over start points."""
    order = np.argsort(start, kind="stable")
    cliques, last = [], None
    for i in order:
        members = np.flatnonzero((start <= start[i]) & (end >= start[i]))
        if len(members) >= 2 and (last is None or not set(members.tolist()) <= last):
            cliques.append(members)
            last = set(members.tolist())
    return cliques


class _Rows:
    def __init__(self) -> None:
        self.rows, self.cols, self.vals, self.rhs, self.tags = [], [], [], [], []
        self.count = 0

    def add(self, row_ids, col_ids, values, rhs, tag, keys) -> None:
        self.rows.append(row_ids + self.count)
        self.cols.append(col_ids)
        self.vals.append(values)
        self.rhs.append(np.asarray(rhs, dtype=float))
        self.tags.append((tag, self.count, keys))
        self.count += len(rhs)

    def grouped(self, keys, coef, limit_of, tag, offset, valid=None) -> None:
        """One row per key whose columns could break its limit (other rows are slack and left out)."""
        valid = keys >= 0 if valid is None else valid
        if not valid.any():
            return
        uniq, inverse = np.unique(keys[valid], return_inverse=True)
        totals = np.bincount(inverse, weights=coef[valid])
        limits = np.ones(len(uniq)) if limit_of is None else np.asarray(limit_of, dtype=float)[uniq]
        binding = totals > limits + 1e-9
        if not binding.any():
            return
        row_of = np.full(len(uniq), -1)
        row_of[binding] = np.arange(binding.sum())
        cols = np.flatnonzero(valid)
        r = row_of[inverse]
        keep = r >= 0
        self.add(r[keep], offset + cols[keep], coef[valid][keep], limits[binding], tag, uniq[binding])


def build_linear(inst: Instance, columns: np.ndarray, pairs: np.ndarray, *, capacity: np.ndarray | None = None,
                 municipal: np.ndarray | None = None, region: float | None = None) -> LinearModel:
    """`pairs` is a teachers x competencies mask of the y variables."""
    pair_t, pair_c = np.nonzero(pairs)
    pair_id = np.full(inst.need.shape, -1, dtype=np.int64)
    pair_id[pair_t, pair_c] = np.arange(len(pair_t))
    n_pairs, n_x = len(pair_t), len(columns)
    t = inst.options.teacher[columns]
    act = inst.options.activity[columns]
    acts = inst.activities
    rows = _Rows()

    w = acts.weights[act]
    a_idx, c_idx = np.nonzero(w)
    p = pair_id[t[a_idx], c_idx]
    keep = p >= 0
    rows.add(np.concatenate([np.arange(n_pairs), p[keep]]),
             np.concatenate([np.arange(n_pairs), n_pairs + a_idx[keep]]),
             np.concatenate([np.ones(n_pairs), -w[a_idx[keep], c_idx[keep]]]),
             np.zeros(n_pairs), "cover", np.arange(n_pairs))
    ones = np.ones(n_x)
    rows.grouped(act, ones, acts.capacity if capacity is None else np.maximum(capacity, 0), "capacity", n_pairs)
    rows.grouped(t.astype(np.int64) * 3 + inst.kind[columns], ones, np.tile(inst.limits, len(inst.need)),
                 "count", n_pairs)
    hours = inst.hours[columns]
    max_hours = inst.region.teachers.max_hours
    rows.grouped(t, hours, max_hours, "hours", n_pairs)
    price = inst.voucher_rub[columns].astype(float)
    voucher = inst.region.teachers.voucher_rub.astype(float)
    rows.grouped(t, price, voucher, "voucher", n_pairs)
    group = acts.group[act]
    rows.grouped(np.where(group >= 0, t.astype(np.int64) * acts.group_key_base + group, -1), ones, None,
                 "group", n_pairs)
    # Knapsack cuts: two options each over half the voucher (or the hours) never fit together.
    rows.grouped(np.where(price > voucher[t] / 2, t, -1), ones, None, "cut", n_pairs)
    rows.grouped(np.where(hours > max_hours[t] / 2, t, -1), ones, None, "cut", n_pairs)
    _schedule_rows(inst, rows, columns, n_pairs)
    budget = inst.budget_rub[columns].astype(float)
    limits = inst.region.budgets.municipality_rub.astype(float)
    if municipal is not None:
        limits = np.where(np.isfinite(municipal), municipal, -1.0)
    muni = inst.municipality[columns]
    limited = (budget > 0) & (limits[muni] >= 0)
    rows.grouped(np.where(limited, muni, -1), budget, np.maximum(limits, 0), "municipal", n_pairs)
    region_limit = float(inst.region.budgets.region_rub if region is None else region)
    rows.grouped(np.where(budget > 0, 0, -1), budget, np.array([max(0.0, region_limit)]), "region", n_pairs)

    matrix = sp.csr_matrix((np.concatenate(rows.vals), (np.concatenate(rows.rows), np.concatenate(rows.cols))),
                           shape=(rows.count, n_pairs + n_x))
    return LinearModel(
        columns=columns, pair_t=pair_t, pair_c=pair_c, matrix=matrix, rhs=np.concatenate(rows.rhs),
        cost=np.concatenate([inst.need[pair_t, pair_c], -inst.solver_cost[columns]]),
        lower=np.concatenate([np.zeros(n_pairs), inst.options.pinned[columns].astype(float)]),
        upper=np.ones(n_pairs + n_x), tags=rows.tags, group_key_base=acts.group_key_base,
    )


def _schedule_rows(inst: Instance, rows: _Rows, columns: np.ndarray, offset: int) -> None:
    act = inst.options.activity[columns]
    dated = np.flatnonzero(inst.activities.dated[act])
    if len(dated) < 2:
        return
    t = inst.options.teacher[columns][dated]
    edges = np.flatnonzero(np.diff(np.concatenate([[-1], t, [-1]])))
    row_ids, col_ids, owners, n = [], [], [], 0
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi - lo < 2:
            continue
        members = dated[lo:hi]
        for clique in interval_cliques(inst.activities.start[act[members]], inst.activities.end[act[members]]):
            row_ids.append(np.full(len(clique), n))
            col_ids.append(offset + members[clique])
            owners.append(t[lo])
            n += 1
    if n:
        r = np.concatenate(row_ids)
        rows.add(r, np.concatenate(col_ids), np.ones(len(r)), np.ones(n), "clique", np.array(owners))
