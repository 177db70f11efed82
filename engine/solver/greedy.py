"""A fast feasible start: teachers in order of need, each taking the best feasible options in turn.

This is the methodologist's spreadsheet made fast and careful (best marginal gain rather than the
first activity that fits); the exact solvers then improve on it. It also repairs: given a plan
that is feasible, it only adds to it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .instance import Instance
# (importing routes also sets numba's cache folder, before @njit below)
from .routes import compatible


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


@njit(cache=True, nogil=True)
def _fill_teachers(order, first, act, kind, group, dated, start, end, hours, voucher, budget, cost, weights, need,
                   max_hours, voucher_cap, limits, teacher_municipality, capacity, municipal, region, chosen):
    """Each teacher of `order` in turn adds to her route, best marginal gain first, while a feasible positive
    gain exists; `capacity`, `municipal`, `region` (an array of one) and `chosen` are updated in place.

    An option is open while it is not taken, has a seat, is of another program/site than those taken, overlaps
    no chosen date, is of a kind below its limit, and fits the hours, voucher and money left."""
    n_comp = need.shape[1]
    cover = np.empty(n_comp)
    needed = np.empty(n_comp, np.int64)  # the competencies the teacher needs (need > 0): the only ones that gain
    counts = np.empty(limits.shape[0], np.int64)
    for teacher in order:
        lo, hi = first[teacher], first[teacher + 1]
        if lo == hi:
            continue
        n_needed = 0
        for c in range(n_comp):
            cover[c] = 0.0
            if need[teacher, c] > 0:
                needed[n_needed] = c
                n_needed += 1
        for k in range(limits.shape[0]):
            counts[k] = 0
        hours_left = max_hours[teacher]
        voucher_left = voucher_cap[teacher]
        taken = np.empty(hi - lo, np.int64)  # the activities of her options already chosen
        n_taken = 0
        for o in range(lo, hi):
            if chosen[o]:
                taken[n_taken] = act[o]
                n_taken += 1
                for c in range(n_comp):
                    cover[c] += weights[act[o], c]
                counts[kind[o]] += 1
                hours_left -= hours[o]
                voucher_left -= voucher[o]
        municipality = teacher_municipality[teacher]
        open_ = np.empty(hi - lo, np.bool_)
        for o in range(lo, hi):
            ok = not chosen[o] and capacity[act[o]] > 0 and counts[kind[o]] < limits[kind[o]]
            for i in range(n_taken if ok else 0):
                if not compatible(taken[i], act[o], group, dated, start, end):
                    ok = False
                    break
            open_[o - lo] = ok
        while True:
            money = min(municipal[municipality], region[0])
            best, best_gain = -1, 1e-12
            for o in range(lo, hi):
                if not open_[o - lo]:
                    continue
                if hours[o] > hours_left + 1e-9 or voucher[o] > voucher_left or budget[o] > money:
                    open_[o - lo] = False
                    continue
                gain = -cost[o]
                for i in range(n_needed):
                    c = needed[i]
                    gain += need[teacher, c] * (min(1.0, cover[c] + weights[act[o], c]) - min(1.0, cover[c]))
                if gain > best_gain:
                    best, best_gain = o, gain
            if best < 0:
                break
            chosen[best] = True
            a = act[best]
            for c in range(n_comp):
                cover[c] += weights[a, c]
            counts[kind[best]] += 1
            hours_left -= hours[best]
            voucher_left -= voucher[best]
            capacity[a] -= 1
            municipal[municipality] -= budget[best]
            region[0] -= budget[best]
            open_[best - lo] = False
            for o in range(lo, hi):
                if open_[o - lo] and (not compatible(a, act[o], group, dated, start, end)
                                      or counts[kind[o]] >= limits[kind[o]] or capacity[act[o]] <= 0):
                    open_[o - lo] = False


def warm_up() -> None:
    """Loads the compiled greedy from numba's cache or compiles it, with the argument types `greedy` passes
    (engine.solver.routes.warm_up calls it before a solve's clock starts)."""
    if _fill_teachers.signatures:
        return
    i64, f64 = np.zeros(1, dtype=np.int64), np.zeros(1)
    _fill_teachers(i64, np.array([0, 1], dtype=np.int64), np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int8),
                   i64, np.zeros(1, dtype=bool), i64, i64, f64, i64, i64, f64, np.ones((1, 1)), np.ones((1, 1)),
                   np.ones(1), np.ones(1), np.ones(3, dtype=np.int64), i64, np.ones(1, dtype=np.int64), np.ones(1),
                   np.ones(1), np.zeros(1, dtype=bool))


def greedy(inst: Instance, chosen: np.ndarray | None = None, order: np.ndarray | None = None) -> np.ndarray:
    """Greedy by need: the neediest teachers first, each taking the best feasible options in turn. Starts from
    `chosen` (pinned, or a plan to repair): only adds to it."""
    chosen = inst.options.pinned.copy() if chosen is None else chosen.copy()
    residuals = Residuals(inst, chosen)
    if order is None:
        order = np.argsort(-inst.need.sum(axis=1), kind="stable")
    acts, teachers = inst.activities, inst.region.teachers
    region = np.array([residuals.region])
    _fill_teachers(
        np.asarray(order, dtype=np.int64), inst.options.first.astype(np.int64),
        inst.options.activity.astype(np.int32, copy=False), inst.kind.astype(np.int8, copy=False),
        acts.group.astype(np.int64), acts.dated.astype(bool), acts.start.astype(np.int64), acts.end.astype(np.int64),
        inst.hours.astype(np.float64, copy=False), inst.voucher_rub.astype(np.int64, copy=False),
        inst.budget_rub.astype(np.int64, copy=False), np.ascontiguousarray(inst.solver_cost, dtype=np.float64),
        np.ascontiguousarray(acts.weights, dtype=np.float64), np.ascontiguousarray(inst.need, dtype=np.float64),
        teachers.max_hours.astype(np.float64), teachers.voucher_rub.astype(np.float64), inst.limits.astype(np.int64),
        inst.region.teacher_municipality.astype(np.int64), residuals.capacity.astype(np.int64),
        residuals.municipal.astype(np.float64), region, chosen)
    return chosen
