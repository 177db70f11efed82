"""A fast feasible start: teachers in order of need, each taking the best feasible options in turn.

This is the methodologist's spreadsheet made fast and careful (best marginal gain rather than the
first activity that fits); the exact solvers then improve on it. It also repairs: given a plan
that is feasible, it only adds to it.
"""

from __future__ import annotations

import numpy as np

from .instance import Instance


class Residuals:
    """Capacities and budgets left over by a plan: the coupling between teachers."""

    def __init__(self, inst: Instance, chosen: np.ndarray) -> None:
        idx = np.flatnonzero(chosen)
        act = inst.options.activity[idx]
        self.capacity = inst.activities.capacity - np.bincount(act, minlength=len(inst.activities))
        spent = np.bincount(inst.municipality[idx], weights=inst.budget_rub[idx],
                            minlength=len(inst.region.municipalities))
        limits = inst.region.budgets.municipality_rub.astype(float)
        self.municipal = np.where(limits >= 0, limits - spent, np.inf)
        self.region = float(inst.region.budgets.region_rub - spent.sum())

    def use(self, activities, municipality: int, roubles: float) -> None:
        """Takes a seat of each of `activities` and `roubles` of the municipality's and the region's money
        (a municipality without a budget row keeps an infinite one)."""
        self.capacity[activities] -= 1
        self.municipal[municipality] -= roubles
        self.region -= roubles

    def overdrawn(self) -> bool:
        return bool((self.capacity < 0).any() or (self.municipal < 0).any() or self.region < 0)


def fill_teacher(inst: Instance, teacher: int, chosen: np.ndarray, residuals: Residuals,
                 prefer: np.ndarray | None = None, penalty: np.ndarray | None = None) -> None:
    """Adds to one teacher's route, best marginal gain first, while a feasible positive gain exists.

    With `prefer` (a score per option, e.g. its LP value), options of higher preference go first
    among those with a positive gain. With `penalty` (points per option, e.g. the LP's price of
    the seats and money it uses), an option must gain more than its penalty to be taken.
    """
    lo, hi = inst.options.first[teacher], inst.options.first[teacher + 1]
    if lo == hi:
        return
    acts = inst.options.activity[lo:hi]
    activities = inst.activities
    weights = activities.weights[acts]
    need = inst.need[teacher]
    cost = inst.solver_cost[lo:hi] if penalty is None else inst.solver_cost[lo:hi] + penalty[lo:hi]
    kind = inst.kind[lo:hi]
    group = activities.group[acts]
    dated = activities.dated[acts]
    start, end = activities.start[acts], activities.end[acts]
    hours, price, budget = inst.hours[lo:hi], inst.voucher_rub[lo:hi], inst.budget_rub[lo:hi]
    mine = chosen[lo:hi]
    cover = weights[mine].sum(axis=0)
    counts = np.bincount(kind[mine], minlength=3)
    hours_left = inst.region.teachers.max_hours[teacher] - hours[mine].sum()
    voucher_left = inst.region.teachers.voucher_rub[teacher] - price[mine].sum()
    municipality = inst.region.teacher_municipality[teacher]
    # `open_` only ever shrinks: what is taken, full, of a used program/site, overlapping a
    # chosen date, of a kind already at its limit, or over the hours or voucher left.
    open_ = ~mine & (residuals.capacity[acts] > 0)
    for taken in np.flatnonzero(mine):
        open_ &= _compatible(taken, group, dated, start, end)
    open_ &= counts[kind] < inst.limits[kind]
    while True:
        open_ &= (hours <= hours_left + 1e-9) & (price <= voucher_left)
        open_ &= budget <= min(residuals.municipal[municipality], residuals.region)
        if not open_.any():
            return
        gain = (np.minimum(1.0, cover + weights) - np.minimum(1.0, cover)) @ need - cost
        feasible = open_ & (gain > 1e-12)
        if not feasible.any():
            return
        key = gain if prefer is None else prefer[lo:hi] * 1e6 + gain
        best = int(np.argmax(np.where(feasible, key, -np.inf)))
        chosen[lo + best] = True
        cover += weights[best]
        counts[kind[best]] += 1
        hours_left -= hours[best]
        voucher_left -= price[best]
        residuals.use(acts[best], municipality, budget[best])
        open_[best] = False
        open_ &= _compatible(best, group, dated, start, end)
        if counts[kind[best]] >= inst.limits[kind[best]]:
            open_ &= kind != kind[best]
        if residuals.capacity[acts[best]] <= 0:
            open_ &= acts != acts[best]


def _compatible(taken: int, group, dated, start, end) -> np.ndarray:
    """Options that can still be taken beside `taken`: another program/site, no date overlap."""
    ok = np.ones(len(group), dtype=bool)
    if group[taken] >= 0:
        ok &= group != group[taken]
    if dated[taken]:
        ok &= ~(dated & (start <= end[taken]) & (end >= start[taken]))
    return ok


def greedy(inst: Instance, chosen: np.ndarray | None = None, order: np.ndarray | None = None,
           prefer: np.ndarray | None = None, penalty: np.ndarray | None = None) -> np.ndarray:
    """Greedy by need: the neediest teachers first. Starts from `chosen` (pinned, or a plan to repair);
    `prefer` rounds an LP solution (options by LP value first)."""
    chosen = inst.options.pinned.copy() if chosen is None else chosen.copy()
    residuals = Residuals(inst, chosen)
    if order is None:
        order = np.argsort(-inst.need.sum(axis=1), kind="stable")
    for teacher in order.tolist():
        fill_teacher(inst, teacher, chosen, residuals, prefer, penalty)
    return chosen
