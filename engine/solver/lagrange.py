"""A proved upper bound by Lagrangian relaxation of the rules that tie teachers together.

Capacities (rule 1) and budgets (rule 9) are the only rules that concern more than one teacher.
Give each of them a price lambda >= 0 and, for any plan that obeys them,

    objective <= L(lambda) = sum_r lambda_r * limit_r + sum_t z_t(lambda),

where z_t is teacher t's best route when every option also pays the prices of the seats and money
it uses (engine.solver.routes solves these exactly). Every L(lambda) is a proof; the prices are
improved by projected subgradient steps (Polyak's rule against the best plan known), starting from
the LP's prices where there are some. Because each teacher's problem is solved exactly, the bound
is never weaker than the LP relaxation's at the best prices, and on these problems it is much
stronger: the LP lets a teacher take fractions of options that cannot go together.

The routes found at the prices are also a guide for the plan (engine.solver.solve).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .instance import Instance
from .routes import _all_routes

NODE_LIMIT = 200_000  # per teacher and pricing; past it her root bound is used (still a proof)


@dataclass
class LagrangeResult:
    bound: float
    capacity_price: np.ndarray  # per activity: points per seat
    municipal_price: np.ndarray  # per municipality: points per rouble
    region_price: float  # points per rouble
    routes: np.ndarray  # bool over options: each teacher's best route at the best prices
    teacher_bound: np.ndarray  # z_t at the best prices
    iterations: int
    inexact_teachers: int
    seconds: float

    def coupling_price(self, inst: Instance) -> np.ndarray:
        """Per option: the price of the seat and money it uses."""
        return self.capacity_price[inst.options.activity] \
            + (self.municipal_price[inst.municipality] + self.region_price) * inst.budget_rub


class RoutePricer:
    """Each teacher's best route under prices; arrays laid out once for the numba kernel."""

    def __init__(self, inst: Instance) -> None:
        acts, opts = inst.activities, inst.options
        act = opts.activity.astype(np.int64)
        self.inst = inst
        self._fixed = (
            opts.first.astype(np.int64), act, inst.kind.astype(np.int64), acts.group[act].astype(np.int64),
            acts.dated[act], acts.start[act].astype(np.int64), acts.end[act].astype(np.int64),
            inst.hours.astype(np.float64), inst.voucher_rub.astype(np.float64),
        )
        self._per_teacher = (
            np.ascontiguousarray(acts.weights, dtype=np.float64), np.ascontiguousarray(inst.need, dtype=np.float64),
            inst.region.teachers.max_hours.astype(np.float64), inst.region.teachers.voucher_rub.astype(np.float64),
            inst.limits.astype(np.int64), opts.pinned,
        )
        self._need_total = inst.need.sum(axis=1)

    def __call__(self, price: np.ndarray, node_limit: int = NODE_LIMIT, tolerance: float = 0.0,
                 active: np.ndarray | None = None):
        """(z per teacher, exact per teacher, bool over options of the best routes) at option prices.

        With `tolerance` > 0, a teacher's search stops once no route can beat the best found by more than
        that share of her need, and z is the best found plus that share: still a proof, found faster.
        Only `active` teachers are searched (z = 0 and no route for the others)."""
        n_teachers = len(self.inst.need)
        value = np.zeros(n_teachers)
        exact = np.zeros(n_teachers, dtype=bool)
        chosen = np.zeros(self.inst.n_options, dtype=bool)
        _all_routes(*self._fixed, np.ascontiguousarray(price, dtype=np.float64), *self._per_teacher,
                    node_limit, tolerance * self._need_total,
                    np.ones(n_teachers, dtype=bool) if active is None else active, value, exact, chosen)
        return value, exact, chosen


def lagrangian_bound(inst: Instance, incumbent: float, time_limit: float, capacity_price: np.ndarray | None = None,
                     municipal_price: np.ndarray | None = None, region_price: float = 0.0,
                     pricer: RoutePricer | None = None, max_iterations: int = 300, node_limit: int = NODE_LIMIT,
                     tolerance: float = 0.0) -> LagrangeResult:
    """Minimises L over the prices by projected subgradient steps, within `time_limit` seconds.

    Budget rows are scaled to fractions of their limit so that seats and roubles move at one pace.
    """
    started = time.perf_counter()
    pricer = pricer or RoutePricer(inst)
    acts, region = inst.activities, inst.region
    n_acts, n_munis = len(acts), len(region.municipalities)
    capacity = acts.capacity.astype(np.float64)
    limits = region.budgets.municipality_rub.astype(np.float64)
    limited = limits > 0  # a zero budget leaves no options that need it: nothing to price
    muni_scale = np.where(limited, limits, 1.0)
    region_limit = float(region.budgets.region_rub)
    act_of, muni_of, budget_of = inst.options.activity, inst.municipality, inst.budget_rub.astype(np.float64)
    pays = budget_of > 0
    # Only rows that some plan could break need a price.
    demand = np.bincount(act_of, minlength=n_acts)
    priced_act = demand > capacity
    muni_demand = np.bincount(muni_of, weights=budget_of, minlength=n_munis)
    priced_muni = limited & (muni_demand > limits)
    priced_region = region_limit > 0 and budget_of.sum() > region_limit

    lam = np.zeros(n_acts) if capacity_price is None else np.where(priced_act, capacity_price, 0.0)
    # Scaled budget prices: points per whole budget.
    mu = np.zeros(n_munis) if municipal_price is None else np.where(priced_muni, municipal_price * muni_scale, 0.0)
    nu = region_price * region_limit if priced_region else 0.0

    best: LagrangeResult | None = None
    theta, stall, iterations = 1.0, 0, 0
    target = incumbent
    while iterations < max_iterations:
        price = inst.solver_cost + lam[act_of] + np.where(
            pays, (mu[muni_of] / muni_scale[muni_of] + (nu / region_limit if priced_region else 0.0)) * budget_of, 0.0)
        z, exact, routes = pricer(price, node_limit, tolerance)
        iterations += 1
        value = float(lam @ capacity + mu.sum() + nu + z.sum())
        value += 1e-9 * max(1.0, abs(value))  # floating-point safety margin
        if best is None or value < best.bound:
            best = LagrangeResult(value, lam.copy(), mu / muni_scale, nu / region_limit if priced_region else 0.0,
                                  routes, z, iterations, int((~exact).sum()), 0.0)
            stall = 0
        else:
            stall += 1
            if stall >= 4:
                theta, stall = theta / 2, 0
        if time.perf_counter() - started > time_limit or value - target <= 1e-6 * max(1.0, abs(value)) \
                or theta < 1e-4:
            break
        # Subgradient of L: limit less use (use of the routes at these prices).
        idx = np.flatnonzero(routes)
        g_cap = capacity - np.bincount(act_of[idx], minlength=n_acts)
        spend = np.bincount(muni_of[idx], weights=budget_of[idx], minlength=n_munis)
        g_muni = 1.0 - spend / muni_scale
        g_region = 1.0 - spend.sum() / region_limit if priced_region else 0.0
        # Projection: a zero price with slack stays zero; unpriced rows never move.
        g_cap = np.where(priced_act & ((lam > 0) | (g_cap < 0)), g_cap, 0.0)
        g_muni = np.where(priced_muni & ((mu > 0) | (g_muni < 0)), g_muni, 0.0)
        if not (priced_region and (nu > 0 or g_region < 0)):
            g_region = 0.0
        norm = float(g_cap @ g_cap + g_muni @ g_muni + g_region * g_region)
        if norm <= 1e-12:  # the routes obey every coupling row: L is the optimum (complementary slack aside)
            break
        step = theta * max(value - target, 1e-6 * max(1.0, abs(value))) / norm
        lam = np.maximum(0.0, lam - step * g_cap)
        mu = np.maximum(0.0, mu - step * g_muni)
        nu = max(0.0, nu - step * g_region)
    assert best is not None
    best.iterations = iterations
    best.seconds = time.perf_counter() - started
    return best
