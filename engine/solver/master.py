"""The decomposition's master LP kept in one HiGHS model across rounds: routes are added as columns and the
simplex starts from the last basis, instead of a new LP solved from scratch each round.

Rows, all made once: convexity per teacher (at most one route; exactly one for a teacher with pins), seats
per (solver) activity, each municipality's budget with a limit and the region's, budgets as shares of their
limits. A row no route uses yet is empty and priced 0. Columns: one per route, value = the route's
objective (SPEC §5 plus any keep bonus), bounds [0, inf) (the convexity row keeps it <= 1).

HiGHS comes from the `highspy` wheel, pinned to a release that links HiGHS statically (1.16.0): 1.15.x
clashes with the HiGHS bundled in OR-Tools when both are loaded in one process (OR-Tools issue #5246);
tests/test_master.py imports both, in both orders, in fresh processes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence

import highspy
import numpy as np
import scipy.sparse as sp

from .instance import Instance



_banner_lock = threading.Lock()
_banner_shown = False


def quiet_highs() -> highspy.Highs:
    """A new HiGHS model, without the banner HiGHS prints on stdout when the first one is made.

    The banner is written by the C++ library before any option can be set, so the process's stdout
    descriptor is pointed at /dev/null for that one construction: it would otherwise land in the
    middle of the CLI's output and of anything that reads the CLI's stdout (JSON, CSV).
    """
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            return highspy.Highs()
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            _banner_shown = True
        return highs


class WarmMaster:
    def __init__(self, inst: Instance, teachers_with_pins: np.ndarray, threads: int = 1, scale: float = 1.0,
                 teachers: np.ndarray | None = None) -> None:
        """`teachers` (bool over teachers; all by default) have convexity rows; `scale` multiplies the limits
        of seats and budgets: a sample of the teachers (engine.solver.decompose) shares that part of them."""
        self.inst = inst
        members = np.arange(len(inst.need)) if teachers is None else np.flatnonzero(teachers)
        self.row_of_teacher = np.full(len(inst.need), -1, dtype=np.int64)
        self.row_of_teacher[members] = np.arange(len(members))
        n_t, n_a = len(members), len(inst.activities)
        budgets = inst.region.budgets
        self.municipal_limit = budgets.municipality_rub.astype(float)
        self.municipal_rows = np.flatnonzero(self.municipal_limit > 0)
        self.municipal_row_of = np.full(len(self.municipal_limit), -1, dtype=np.int64)
        self.municipal_row_of[self.municipal_rows] = n_t + n_a + np.arange(len(self.municipal_rows))
        self.region_limit = float(budgets.region_rub)
        self.region_row = n_t + n_a + len(self.municipal_rows) if self.region_limit > 0 else -1
        n_rows = n_t + n_a + len(self.municipal_rows) + (self.region_row >= 0)
        lower = np.full(n_rows, -highspy.kHighsInf)
        lower[self.row_of_teacher[teachers_with_pins]] = 1.0
        upper = np.ones(n_rows)
        upper[n_t:] = scale
        upper[n_t:n_t + n_a] = scale * inst.activities.capacity
        self.n_teachers, self.n_activities = n_t, n_a
        self.highs = quiet_highs()
        for name, value in (("output_flag", False), ("threads", threads), ("presolve", "off")):
            self.highs.setOptionValue(name, value)
        self.highs.addRows(n_rows, lower, upper, 0, np.zeros(n_rows + 1, dtype=np.int32),
                           np.zeros(0, dtype=np.int32), np.zeros(0))
        self.n_columns = 0
        self.solved = False

    def add(self, routes: Sequence[tuple[int, ...]]) -> np.ndarray:
        """Adds the routes (tuples of option indices) as columns; returns their values."""
        if not routes:
            return np.zeros(0)
        inst = self.inst
        n = len(routes)
        lengths = np.fromiter((len(r) for r in routes), dtype=np.int64, count=n)
        options = np.fromiter((o for r in routes for o in r), dtype=np.int64, count=int(lengths.sum()))
        column = np.repeat(np.arange(n), lengths)
        teacher = np.zeros(n, dtype=np.int64)
        teacher[column] = inst.options.teacher[options]
        cover = np.zeros((n, inst.need.shape[1]))
        np.add.at(cover, column, inst.activities.weights[inst.options.activity[options]])
        value = (inst.need[teacher] * np.minimum(1.0, cover)).sum(axis=1) \
            - np.bincount(column, weights=inst.solver_cost[options], minlength=n)
        rows = [self.row_of_teacher[teacher], self.n_teachers + inst.options.activity[options].astype(np.int64)]
        cols = [np.arange(n), column]
        vals = [np.ones(n), np.ones(len(options))]
        budget = inst.budget_rub[options].astype(float)
        muni = inst.municipality[options]
        paid = (budget > 0) & (self.municipal_row_of[muni] >= 0)
        if paid.any():
            rows.append(self.municipal_row_of[muni[paid]])
            cols.append(column[paid])
            vals.append(budget[paid] / self.municipal_limit[muni[paid]])
        if self.region_row >= 0 and (budget > 0).any():
            spent = budget > 0
            rows.append(np.full(int(spent.sum()), self.region_row))
            cols.append(column[spent])
            vals.append(budget[spent] / self.region_limit)
        matrix = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(self.highs.getNumRow(), n))
        matrix.sum_duplicates()
        self.highs.addCols(n, -value, np.zeros(n), np.full(n, highspy.kHighsInf), matrix.nnz,
                           matrix.indptr[:-1].astype(np.int32), matrix.indices.astype(np.int32), matrix.data)
        self.n_columns += n
        return value

    def delete(self, mask: np.ndarray) -> None:
        """Deletes the columns where `mask` (over the model's columns) is true; the basis of the rest stays."""
        gone = np.flatnonzero(mask[:self.n_columns])
        if len(gone):
            self.highs.deleteCols(len(gone), gone.astype(np.int32))
            self.n_columns -= len(gone)

    def solve(self, time_limit: float):
        """(value, x, reduced values (<= 0 for a column that cannot improve), capacity, municipal and
        region prices per seat and per rouble); value is nan without a usable solution."""
        # HiGHS' time limit counts the model's run time since it was made, over all its solves.
        self.highs.setOptionValue("time_limit", self.highs.getRunTime() + max(0.1, float(time_limit)))
        # The first solve from scratch by interior point (about twice as fast as simplex on masters of
        # tens of thousands of teachers), its crossover leaving a basis; then simplex from that basis.
        self.highs.setOptionValue("solver", "simplex" if self.solved else "ipm")
        self.highs.run()
        self.solved = True
        solution = self.highs.getSolution()
        if not solution.dual_valid:
            return float("nan"), None, None, None, None, 0.0
        x = np.asarray(solution.col_value)
        price = np.maximum(0.0, -np.asarray(solution.row_dual))
        capacity = price[self.n_teachers:self.n_teachers + self.n_activities]
        municipal = np.zeros(len(self.municipal_limit))
        municipal[self.municipal_rows] = price[self.municipal_row_of[self.municipal_rows]] \
            / self.municipal_limit[self.municipal_rows]
        region = float(price[self.region_row]) / self.region_limit if self.region_row >= 0 else 0.0
        value = -float(self.highs.getInfo().objective_function_value)
        return value, x, -np.asarray(solution.col_dual), capacity, municipal, region
