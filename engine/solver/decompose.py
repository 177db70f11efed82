"""Dantzig-Wolfe decomposition: routes as columns, capacities and budgets as the only shared rows.

The master LP chooses, for each teacher, a mix of known routes (at most one in all; exactly one for a
teacher with pinned options, whose every route holds them) so that seats and budgets are not exceeded.
Its row prices lambda go to the pricing step (engine.solver.routes), which finds each teacher's best
route at those prices over *all* her options; that gives

* a proved bound, by Lagrangian duality: for any lambda >= 0 and any plan that obeys the rules,
  objective <= L(lambda) = sum_r lambda_r limit_r + sum_t z_t(lambda)  (engine.solver.lagrange);
* new columns: the routes that beat their price.

The loop stops when the master's value meets the best bound (the LP over all routes is solved), or at
its time. Measured on altai-krai at 3,000 teachers: 12 rounds, bound 803.4 where the LP relaxation
over options gives 852.6; then a MIP over the master's columns finds a plan of 802.4.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from .instance import Instance
from .lagrange import RoutePricer

# Pricing effort: per teacher, the search stops after this many nodes (her bound is then what is left
# open) or once no route beats the best found by more than this share of her need.
NODE_LIMIT = 3000
FINAL_NODE_LIMIT = 30000
TOLERANCE = 2e-4
# Past this many master columns per teacher, unused ones furthest from entering are dropped (they come
# back if pricing finds them again): keeps the LP small.
COLUMNS_PER_TEACHER = 4
SMOOTHING = 0.5  # weight of the best prices so far in the prices of the next pricing


@dataclass
class Duals:
    capacity: np.ndarray  # points per seat, per activity
    municipal: np.ndarray  # points per rouble, per municipality
    region: float  # points per rouble

    def option_price(self, inst: Instance) -> np.ndarray:
        """What each option pays for the seat and money it uses."""
        return self.capacity[inst.options.activity] \
            + (self.municipal[inst.municipality] + self.region) * inst.budget_rub

    def toward(self, other: "Duals", share: float) -> "Duals":
        """(1 - share) * self + share * other."""
        return Duals((1 - share) * self.capacity + share * other.capacity,
                     (1 - share) * self.municipal + share * other.municipal,
                     (1 - share) * self.region + share * other.region)

    def value_of_limits(self, inst: Instance) -> float:
        budgets = inst.region.budgets
        municipal = np.where(budgets.municipality_rub > 0, budgets.municipality_rub, 0)
        return float(self.capacity @ inst.activities.capacity + self.municipal @ municipal
                     + self.region * budgets.region_rub)


@dataclass
class Round:
    seconds: float
    columns: int
    master: float  # the master LP's value: what the known routes can do, fractionally
    bound: float  # L at the master's prices (a proof)
    inexact: int  # teachers whose search hit the node limit
    master_seconds: float = 0.0
    pricing_seconds: float = 0.0


class Decomposition:
    def __init__(self, inst: Instance, pricer: RoutePricer | None = None) -> None:
        self.inst = inst
        self.pricer = pricer or RoutePricer(inst)
        self._keys: set[tuple[int, ...]] = set()
        self._routes: list[tuple[int, ...]] = []
        self.x = np.zeros(0)
        self.best_bound = np.inf
        self.best_duals: Duals | None = None
        self.best_routes: np.ndarray | None = None  # each teacher's best route at the best duals
        self.teachers_with_pins = np.unique(inst.options.teacher[inst.options.pinned])

    @property
    def n_columns(self) -> int:
        return len(self._routes)

    def add(self, chosen: np.ndarray) -> int:
        """Adds each teacher's route in `chosen` (bool over options) as a column; returns how many were new."""
        idx = np.flatnonzero(chosen)
        if len(idx) == 0:
            return 0
        teacher = self.inst.options.teacher[idx]
        cuts = np.flatnonzero(np.diff(teacher)) + 1
        added = 0
        for route in np.split(idx, cuts):
            key = tuple(route.tolist())
            if key not in self._keys:
                self._keys.add(key)
                self._routes.append(key)
                added += 1
        return added

    def _drop(self, mask: np.ndarray) -> None:
        if not mask.any():
            return
        for j in np.flatnonzero(mask):
            self._keys.discard(self._routes[j])
        self._routes = [r for r, gone in zip(self._routes, mask) if not gone]
        self.x = self.x[~mask]

    def _columns(self):
        lengths = np.fromiter((len(r) for r in self._routes), dtype=np.int64, count=len(self._routes))
        options = np.fromiter((o for r in self._routes for o in r), dtype=np.int64, count=int(lengths.sum()))
        column = np.repeat(np.arange(len(self._routes)), lengths)
        return options, column

    def _master(self):
        """The master's rows: convexity per teacher, then capacities, municipal and region budgets (as
        shares of their limits), each only where some column uses it."""
        inst, n = self.inst, len(self._routes)
        options, column = self._columns()
        teacher = inst.options.teacher[options]
        route_teacher = np.zeros(n, dtype=np.int64)
        route_teacher[column] = teacher
        need, acts = inst.need, inst.activities
        cover = np.zeros((n, need.shape[1]))
        np.add.at(cover, column, acts.weights[inst.options.activity[options]])
        value = (need[route_teacher] * np.minimum(1.0, cover)).sum(axis=1) \
            - np.bincount(column, weights=inst.solver_cost[options], minlength=n)
        blocks, rhs, tags = [], [], []

        def block(keys, cols, vals, limit, tag):
            uniq, row = np.unique(keys, return_inverse=True)
            blocks.append(sp.csr_matrix((vals, (row, cols)), shape=(len(uniq), n)))
            rhs.append(np.asarray(limit, dtype=float)[uniq] if np.ndim(limit) else np.full(len(uniq), limit))
            tags.append((tag, uniq))

        block(route_teacher, np.arange(n), np.ones(n), 1.0, "convexity")
        act = inst.options.activity[options]
        block(act, column, np.ones(len(options)), acts.capacity.astype(float), "capacity")
        budget = inst.budget_rub[options].astype(float)
        limits = inst.region.budgets.municipality_rub.astype(float)
        muni = inst.municipality[options]
        paid = (budget > 0) & (limits[muni] > 0)
        if paid.any():
            block(muni[paid], column[paid], budget[paid] / limits[muni[paid]], 1.0, "municipal")
        region_limit = float(inst.region.budgets.region_rub)
        if region_limit > 0 and (budget > 0).any():
            spent = budget > 0
            block(np.zeros(spent.sum(), dtype=np.int64), column[spent], budget[spent] / region_limit, 1.0, "region")
        matrix = sp.vstack(blocks).tocsr()
        lower = np.full(len(np.concatenate(rhs)), -np.inf)
        convexity = tags[0][1]
        lower[:len(convexity)] = np.where(np.isin(convexity, self.teachers_with_pins), 1.0, -np.inf)
        return value, matrix, np.concatenate(rhs), lower, tags

    def solve_master(self, time_limit: float) -> tuple[float, Duals]:
        """The master LP (HiGHS through SciPy): its value and its row prices."""
        inst = self.inst
        duals = Duals(np.zeros(len(inst.activities)), np.zeros(len(inst.region.municipalities)), 0.0)
        if not self._routes:  # no route is worth anything at any prices: the empty plan is optimal
            return 0.0, duals
        value, matrix, upper, lower, tags = self._master()
        pinned_rows = np.isfinite(lower)
        # linprog wants A_ub x <= b and A_eq x = b: teachers with pins take exactly one route.
        a_ub, b_ub = matrix[~pinned_rows], upper[~pinned_rows]
        a_eq, b_eq = (matrix[pinned_rows], upper[pinned_rows]) if pinned_rows.any() else (None, None)
        # Interior point: on masters of tens of thousands of teachers it is about twice as fast as dual
        # simplex, which SciPy cannot warm-start anyway. Any prices are valid for the bound.
        result = linprog(-value, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None),
                         method="highs-ipm", options={"time_limit": max(0.1, time_limit)})
        if result.x is None or result.ineqlin is None:
            return float("nan"), duals
        self.x = np.asarray(result.x)
        reduced = value + a_ub.T @ np.asarray(result.ineqlin.marginals)
        if a_eq is not None:
            reduced += a_eq.T @ np.asarray(result.eqlin.marginals)
        excess = len(value) - COLUMNS_PER_TEACHER * len(inst.need)
        if excess > 0:
            unused = np.flatnonzero((self.x <= 1e-9) & (reduced < -1e-6))
            worst = unused[np.argsort(reduced[unused])[:excess]]
            self._drop(np.isin(np.arange(len(value)), worst))
        prices = np.zeros(len(upper))
        prices[~pinned_rows] = np.maximum(0.0, -np.asarray(result.ineqlin.marginals))
        first = 0
        limits = inst.region.budgets.municipality_rub.astype(float)
        for tag, keys in tags:
            part = prices[first:first + len(keys)]
            first += len(keys)
            if tag == "capacity":
                duals.capacity[keys] = part
            elif tag == "municipal":
                duals.municipal[keys] = part / limits[keys]
            elif tag == "region":
                duals.region = float(part.sum()) / float(inst.region.budgets.region_rub)
        return -float(result.fun), duals

    def price(self, duals: Duals, node_limit: int = NODE_LIMIT, tolerance: float = TOLERANCE):
        """L at these prices (a proof) and each teacher's best route; keeps the best bound found."""
        z, exact, routes = self.pricer(self.inst.solver_cost + duals.option_price(self.inst), node_limit, tolerance)
        bound = duals.value_of_limits(self.inst) + float(z.sum())
        bound += 1e-9 * max(1.0, abs(bound))  # floating-point safety margin
        if bound < self.best_bound:
            self.best_bound, self.best_duals, self.best_routes = bound, duals, routes
        return bound, routes, int((~exact).sum())

    def run(self, start: np.ndarray, time_limit: float, on_round: Callable[[Round], None] | None = None,
            max_rounds: int = 100, should_stop: Callable[[], bool] | None = None) -> list[Round]:
        """Column generation from the routes of `start` (a plan) and of each teacher's best route alone."""
        started = time.perf_counter()
        zero = Duals(np.zeros(len(self.inst.activities)), np.zeros(len(self.inst.region.municipalities)), 0.0)
        self.add(start)
        _, routes, _ = self.price(zero, node_limit=300)
        self.add(routes)
        rounds: list[Round] = []
        while len(rounds) < max_rounds:
            left = time_limit - (time.perf_counter() - started)
            if left <= 0 or (should_stop and should_stop()):
                break
            lp_started = time.perf_counter()
            master, duals = self.solve_master(left)
            if not np.isfinite(master):
                break
            pricing_started = time.perf_counter()
            if rounds and self.best_duals is not None:
                # Wentges smoothing: price between the best prices so far and the master's, which
                # swing wildly while the master knows few routes; fall back to the master's if that
                # finds nothing new.
                bound, routes, inexact = self.price(self.best_duals.toward(duals, 1 - SMOOTHING))
                new = self.add(routes)
                if new == 0:
                    bound, routes, inexact = self.price(duals)
                    new = self.add(routes)
            else:
                bound, routes, inexact = self.price(duals, node_limit=300)
                new = self.add(routes)
            now = time.perf_counter()
            rounds.append(Round(now - started, self.n_columns, master, bound, inexact,
                                pricing_started - lp_started, now - pricing_started))
            if on_round:
                on_round(rounds[-1])
            # Converged: the bound is the master's value but for the search tolerance.
            slack = TOLERANCE * float(self.inst.need.sum()) + 1e-6 * max(1.0, abs(master))
            if new == 0 or self.best_bound - master <= slack:
                break
        return rounds

    def integer_plan(self, time_limit: float) -> np.ndarray | None:
        """A plan from the master's columns: HiGHS' MIP over them (one route per teacher, shared rows kept)."""
        if not self._routes:
            return None
        value, matrix, upper, lower, _ = self._master()
        result = milp(-value, constraints=LinearConstraint(matrix, lower, upper), integrality=np.ones(len(value)),
                      bounds=Bounds(0, 1), options={"time_limit": max(0.1, time_limit), "mip_rel_gap": 1e-5})
        if result.x is None:
            return None
        chosen = np.zeros(self.inst.n_options, dtype=bool)
        options, column = self._columns()
        chosen[options[result.x[column] > 0.5]] = True
        return chosen
