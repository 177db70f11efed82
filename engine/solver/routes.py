"""Each teacher's best route under prices, solved exactly (numba): the pricing step of the Lagrangian.

Relax the rules that tie teachers together (capacities and budgets) with prices lambda >= 0 and the
problem splits into one small problem per teacher: choose a route (at most one mentor,
`max_internships` internships, `max_programs` programs; one session per program or site; no two
dated sessions overlapping; hours; voucher; pinned options in) maximising

    sum_c need_c * min(1, cover_c)  -  sum over the route of price_a,
    price_a = cost_a (less any keep bonus) + lambda of the seats and money option a uses.

This module solves those problems by depth-first branch and bound over each teacher's options,
sorted by their value taken alone. Two facts make the search small and exact:

* an option adds at most its value taken alone to any route (cover is capped at 1, so the gain of
  an option never grows with what is already chosen), so options whose value alone is <= 0 are
  never needed, and a route extended by options after position j gains at most the best few
  remaining values of each kind, as many as the kind has free places;
* when no price is negative, it also gains at most the need that is still uncovered.

A teacher whose search exceeds `node_limit` gets the largest bound of what the search left open
instead of her optimum (and is counted): the result is then still an upper bound, only a weaker one.
Those open ends, and her root, are bounded once more by the Lagrangian relaxation of the cover caps
(`_lagrangian_extension`: the linear relaxation's value, approached by subgradient steps), which is
what keeps a cut search's bound close where many options share a few competencies: on krasnoyarsk-krai
at 3,000 nodes the open teachers' bounds exceeded their best routes by 171 points instead of 720.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numba
import numpy as np
from numba import njit, parallel_chunksize, prange


def numba_cache_dir() -> Path:
    """Where the compiled search is cached: `NUMBA_CACHE_DIR` when set, else the user's cache folder.

    Never inside the installed package: a system install is read-only there, and pip does not remove
    files it did not install, so a cache left there would outlive (and shadow) the package.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "marshrut" / "numba"


# numba reads its cache folder when a `cache=True` function is decorated, so this comes first.
numba.config.CACHE_DIR = str(numba_cache_dir())

if TYPE_CHECKING:
    from .instance import Instance

NODE_LIMIT = 200_000  # default per teacher and pricing; past it her open bound is used (still a proof)
# Subgradient steps of the Lagrangian bound (`_lagrangian_extension`), of size LAGRANGIAN_STEP_SIZE / (step + 1).
# It bounds a teacher's root and, when the node limit cuts her search, what the search left open; at every
# node it cost more than it pruned (measured on krasnoyarsk-krai: twice the CPU for the bound that a deeper
# search with it at the root and the open ends reached). 10-100 steps and sizes 0.25-1 bound within 0.2%.
LAGRANGIAN_STEPS = 30
LAGRANGIAN_STEP_SIZE = 0.5
DEADLINE_SLICES = 8  # a pricing with a deadline searches teachers in this many slices, checking the time
PARALLEL_CHUNK = 16  # teachers a thread takes at a time

_EPS = 1e-12


@njit(cache=True, nogil=True)
def _teacher_route(t, first, act, kind, group, dated, start, end, hours, voucher, price, weights, need,
                   max_hours, voucher_cap, limits, pinned, node_limit, tolerance, chosen):
    """Returns (an upper bound on her best route's value, searched to the end?, the value of the best route
    found) for teacher t, and marks that route in `chosen`; the bound exceeds the route found by at most
    `tolerance` when searched to the end."""
    lo, hi = first[t], first[t + 1]
    n_comp = need.shape[1]
    comps = np.empty(n_comp, np.int64)
    nc = 0
    for c in range(n_comp):
        if need[t, c] > 0:
            comps[nc] = c
            nc += 1
    n_kinds = limits.shape[0]
    n_opt = hi - lo
    max_depth = 0
    for k in range(n_kinds):
        max_depth += limits[k]
    n_pinned = 0
    for a in range(lo, hi):
        if pinned[a]:
            n_pinned += 1
    depth_cap = max_depth + n_pinned + 1
    cov = np.zeros((depth_cap + 1, max(nc, 1)))
    val = np.zeros(depth_cap + 1)
    hrs = np.zeros(depth_cap + 1)
    vch = np.zeros(depth_cap + 1)
    cnt = np.zeros((depth_cap + 1, n_kinds), np.int64)
    sel = np.empty(depth_cap + 1, np.int64)  # option index (global) chosen at each depth
    sel_pos = np.empty(depth_cap + 1, np.int64)  # and its position among the candidates
    # Pinned options form the base of every route.
    base = 0
    negative_price = False
    for a in range(lo, hi):
        if price[a] < 0:
            negative_price = True
        if not pinned[a]:
            continue
        for i in range(nc):
            cov[0, i] += weights[act[a], comps[i]]
        val[0] -= price[a]
        hrs[0] += hours[a]
        vch[0] += voucher[a]
        cnt[0, kind[a]] += 1
        sel[base] = a
        base += 1
    for i in range(nc):
        val[0] += need[t, comps[i]] * min(1.0, cov[0, i])
    # Copy the base state to depth `base` (the search's root).
    if base > 0:
        for i in range(nc):
            cov[base, i] = cov[0, i]
        val[base], hrs[base], vch[base] = val[0], hrs[0], vch[0]
        for k in range(n_kinds):
            cnt[base, k] = cnt[0, k]
    # Candidates: unpinned options whose value alone is positive, best first.
    alone = np.empty(n_opt)
    cand = np.empty(n_opt, np.int64)
    n_cand = 0
    for a in range(lo, hi):
        if pinned[a]:
            continue
        v = -price[a]
        for i in range(nc):
            v += need[t, comps[i]] * min(1.0, weights[act[a], comps[i]])
        if v > _EPS:
            alone[n_cand] = v
            cand[n_cand] = a
            n_cand += 1
    order = np.argsort(-alone[:n_cand])
    cand = cand[:n_cand][order]
    alone = alone[:n_cand][order]
    # reach[j, k, i]: the largest weight on needed competency i of a candidate of kind k at or after j.
    reach = np.zeros((n_cand + 1, n_kinds, max(nc, 1)))
    for j in range(n_cand - 1, -1, -1):
        a = cand[j]
        for k in range(n_kinds):
            for i in range(nc):
                reach[j, k, i] = reach[j + 1, k, i]
        for i in range(nc):
            w = min(1.0, weights[act[a], comps[i]])
            if w > reach[j, kind[a], i]:
                reach[j, kind[a], i] = w
    max_limit = 1
    for k in range(n_kinds):
        max_limit = max(max_limit, limits[k])
    top = np.zeros((n_kinds, max_limit))
    # Multipliers of the Lagrangian bound (set at the root, the start for the open ends' bounds) and its
    # work arrays.
    mult = np.full(max(nc, 1), 0.5)
    top_option = np.empty((n_kinds, max_limit), np.int64)
    gap = np.empty(max(nc, 1))
    reached = np.empty(max(nc, 1))

    best = val[base]
    best_depth = base
    best_sel = sel.copy()
    nodes = 0
    exact = True
    open_bound = 0.0
    depth = base
    j = 0
    root_bound = val[base] + _extension(t, j, cnt[base], cov[base], hrs[base], vch[base], cand, alone, act, kind, price,
                                        hours, voucher, weights, need, comps, nc, max_hours, voucher_cap, limits,
                                        reach, top, top_option, negative_price)
    while True:
        bound = val[depth] + _extension(t, j, cnt[depth], cov[depth], hrs[depth], vch[depth], cand, alone, act, kind,
                                        price, hours, voucher, weights, need, comps, nc, max_hours, voucher_cap,
                                        limits, reach, top, top_option, negative_price)
        if j >= n_cand or bound <= best + tolerance:
            if depth == base:
                break
            depth -= 1
            j = sel_pos[depth] + 1
            continue
        nodes += 1
        if nodes > node_limit:
            # What is left unexplored: candidates j.. at this depth and after each choice on the path.
            exact = False
            # Only a cut search needs the Lagrangian bound (a search to the end proves its own optimum), so
            # it is computed here, at the root first (whose state the search never overwrites) to set the
            # multipliers the open ends start from.
            root_bound = min(root_bound, val[base] + _lagrangian_extension(
                t, 0, cnt[base], cov[base], hrs[base], vch[base], cand, alone, act, kind, price, hours, voucher,
                weights, need, comps, nc, max_hours, voucher_cap, limits, mult, -np.inf, top, top_option, gap,
                reached))
            open_bound = min(bound, val[depth] + _lagrangian_extension(
                t, j, cnt[depth], cov[depth], hrs[depth], vch[depth], cand, alone, act, kind, price, hours, voucher,
                weights, need, comps, nc, max_hours, voucher_cap, limits, mult, -np.inf, top, top_option, gap,
                reached))
            for d in range(base, depth):
                b = val[d] + _extension(t, sel_pos[d] + 1, cnt[d], cov[d], hrs[d], vch[d], cand, alone, act, kind,
                                        price, hours, voucher, weights, need, comps, nc, max_hours, voucher_cap,
                                        limits, reach, top, top_option, negative_price)
                if b > open_bound and sel_pos[d] + 1 < n_cand:
                    b = min(b, val[d] + _lagrangian_extension(
                        t, sel_pos[d] + 1, cnt[d], cov[d], hrs[d], vch[d], cand, alone, act, kind, price, hours,
                        voucher, weights, need, comps, nc, max_hours, voucher_cap, limits, mult, open_bound - val[d],
                        top, top_option, gap, reached))
                open_bound = max(open_bound, b)
            break
        a = cand[j]
        k = kind[a]
        feasible = cnt[depth, k] < limits[k] and hrs[depth] + hours[a] <= max_hours[t] + 1e-9 \
            and vch[depth] + voucher[a] <= voucher_cap[t]
        if feasible:
            # group, dated, start and end are per activity (not per option: a region's options are many)
            for d in range(depth):
                if not compatible(act[sel[d]], act[a], group, dated, start, end):
                    feasible = False
                    break
        if not feasible:
            j += 1
            continue
        nd = depth + 1
        v = val[depth] - price[a]
        for i in range(nc):
            before = min(1.0, cov[depth, i])
            cov[nd, i] = cov[depth, i] + weights[act[a], comps[i]]
            v += need[t, comps[i]] * (min(1.0, cov[nd, i]) - before)
        val[nd] = v
        hrs[nd] = hrs[depth] + hours[a]
        vch[nd] = vch[depth] + voucher[a]
        for kk in range(n_kinds):
            cnt[nd, kk] = cnt[depth, kk]
        cnt[nd, k] += 1
        sel[depth] = a
        sel_pos[depth] = j
        if v > best + 1e-12:
            best = v
            best_depth = nd
            for d in range(nd):
                best_sel[d] = sel[d]
        depth = nd
        j += 1
    for d in range(best_depth):
        chosen[best_sel[d]] = True
    if not exact:
        return min(root_bound, max(best + tolerance, open_bound)), False, best
    return best + tolerance, True, best


@njit(cache=True, nogil=True)
def compatible(taken, other, group, dated, start, end):
    """Whether activity `other` can be taken beside activity `taken` (rules 2 and 6): another program/site,
    no overlap of dated sessions. Used by the route search and by the greedy start."""
    if group[taken] >= 0 and group[other] == group[taken]:
        return False
    if dated[taken] and dated[other] and start[other] <= end[taken] and end[other] >= start[taken]:
        return False
    return True


@njit(cache=True, nogil=True)
def _clear_best(top, top_option, limits, cnt):
    """Empties every kind's best few (`top`, values in descending order, and their options); returns the
    least value a candidate must beat to enter one: 0 if a kind has a free place, else infinity."""
    threshold = np.inf
    for k in range(limits.shape[0]):
        for r in range(top.shape[1]):
            top[k, r] = 0.0
            top_option[k, r] = -1
        if limits[k] - cnt[k] > 0:
            threshold = 0.0
    return threshold


@njit(cache=True, nogil=True)
def _enter_best(top, top_option, k, free, value, option, limits, cnt):
    """Puts `value` (of `option`) into kind k's best `free`, which it beats; returns the new least value a
    candidate must beat to enter any kind's best few."""
    r = free - 1
    while r > 0 and top[k, r - 1] < value:
        top[k, r] = top[k, r - 1]
        top_option[k, r] = top_option[k, r - 1]
        r -= 1
    top[k, r] = value
    top_option[k, r] = option
    threshold = np.inf
    for kk in range(limits.shape[0]):
        f = limits[kk] - cnt[kk]
        if f > 0 and top[kk, f - 1] < threshold:
            threshold = top[kk, f - 1]
    return threshold


@njit(cache=True, nogil=True)
def _sum_best(top, limits, cnt):
    """The sum of every kind's best few."""
    total = 0.0
    for k in range(limits.shape[0]):
        for r in range(max(0, limits[k] - cnt[k])):
            total += top[k, r]
    return total


@njit(cache=True, nogil=True)
def _extension(t, j, cnt, cov, hrs, vch, cand, alone, act, kind, price, hours, voucher, weights, need, comps, nc,
               max_hours, voucher_cap, limits, reach, top, top_option, negative_price):
    """At most what candidates j, j+1, ... can add to a route with counts `cnt`, cover `cov`, hours `hrs` and
    voucher spending `vch`: per kind, the best few gains given that cover (as many as the kind has free
    places) of candidates that still fit the hours and voucher; and, when no price is negative, the
    uncovered need each competency could still get from that many of the strongest weights left.

    Candidates are sorted by their value alone, which bounds their gain, so the scan stops as soon as
    no later candidate can enter any kind's best few."""
    n_kinds = limits.shape[0]
    threshold = _clear_best(top, top_option, limits, cnt)
    if threshold == np.inf:
        return 0.0
    for jj in range(j, alone.shape[0]):
        if alone[jj] <= threshold:
            break
        a = cand[jj]
        k = kind[a]
        free = limits[k] - cnt[k]
        if free <= 0 or alone[jj] <= top[k, free - 1]:
            continue
        if hrs + hours[a] > max_hours[t] + 1e-9 or vch + voucher[a] > voucher_cap[t]:
            continue
        gain = -price[a]
        for i in range(nc):
            c = min(1.0, cov[i])
            gain += need[t, comps[i]] * (min(1.0, cov[i] + weights[act[a], comps[i]]) - c)
        if gain <= top[k, free - 1]:
            continue
        threshold = _enter_best(top, top_option, k, free, gain, a, limits, cnt)
    by_gain = _sum_best(top, limits, cnt)
    if negative_price:
        return by_gain
    by_cover = 0.0
    for i in range(nc):
        gap = 1.0 - min(1.0, cov[i])
        if gap <= 0:
            continue
        can = 0.0
        for k in range(n_kinds):
            free = limits[k] - cnt[k]
            if free > 0:
                can += free * reach[j, k, i]
        by_cover += need[t, comps[i]] * min(gap, can)
    return min(by_gain, by_cover)


@njit(cache=True, nogil=True)
def _lagrangian_extension(t, j, cnt, cov, hrs, vch, cand, alone, act, kind, price, hours, voucher, weights, need,
                          comps, nc, max_hours, voucher_cap, limits, mult, enough, top, top_option, gap, reached):
    """At most what candidates j, j+1, ... can add, by the Lagrangian relaxation of the cover caps.

    What an extension S adds on competency c is need_c * min(gap_c, sum over S of min(gap_c, w_ac)), and
    min(x, y) <= t x + (1 - t) y for any t in [0, 1]. So for any multipliers t_c the extension adds at most

        f(t) = sum_c t_c need_c gap_c + sum over kinds of the best free few of
               (sum_c (1 - t_c) need_c min(gap_c, w_ac) - price_a)^+,

    a bound for every t (t = 0 is the sum of the best gains; t = 1 the uncovered need). Its minimum over t
    is the linear relaxation's value, far below both ends where many options share few competencies.
    LAGRANGIAN_STEPS subgradient steps from `mult` (updated in place) look for it; the least f seen is
    returned, and the search stops early once f <= `enough` (the bound asked for is proved)."""
    n_kinds = limits.shape[0]
    for i in range(nc):
        gap[i] = 1.0 - min(1.0, cov[i])
        if gap[i] < 0.0:
            gap[i] = 0.0
    best_f = np.inf
    for step in range(LAGRANGIAN_STEPS):
        f = 0.0
        for i in range(nc):
            f += mult[i] * need[t, comps[i]] * gap[i]
        threshold = _clear_best(top, top_option, limits, cnt)
        if threshold < np.inf:
            for jj in range(j, alone.shape[0]):
                # A candidate's term is at most its value alone (t >= 0, gap <= 1): sorted by that, the
                # scan stops once no later candidate can enter any kind's best few.
                if alone[jj] <= threshold:
                    break
                a = cand[jj]
                k = kind[a]
                free = limits[k] - cnt[k]
                if free <= 0 or alone[jj] <= top[k, free - 1]:
                    continue
                if hrs + hours[a] > max_hours[t] + 1e-9 or vch + voucher[a] > voucher_cap[t]:
                    continue
                term = -price[a]
                for i in range(nc):
                    term += (1.0 - mult[i]) * need[t, comps[i]] * min(gap[i], weights[act[a], comps[i]])
                if term <= top[k, free - 1]:
                    continue
                threshold = _enter_best(top, top_option, k, free, term, a, limits, cnt)
            f += _sum_best(top, limits, cnt)
        if f < best_f:
            best_f = f
        if best_f <= enough or step == LAGRANGIAN_STEPS - 1:
            break
        # Subgradient of f in t_c: need_c (gap_c - what the chosen terms claim of c). Where they claim
        # more than the gap, a larger t_c lowers f, and the other way round.
        for i in range(nc):
            reached[i] = 0.0
        for k in range(n_kinds):
            for r in range(max(0, limits[k] - cnt[k])):
                a = top_option[k, r]
                if a < 0:
                    continue
                for i in range(nc):
                    reached[i] += min(gap[i], weights[act[a], comps[i]])
        moved = False
        rate = LAGRANGIAN_STEP_SIZE / (step + 1.0)
        for i in range(nc):
            m = mult[i] + rate * (reached[i] - gap[i])
            m = min(1.0, max(0.0, m))
            if m != mult[i]:
                moved = True
            mult[i] = m
        if not moved:
            break
    return best_f


@njit(cache=True, nogil=True, parallel=True)
def _all_routes(first, act, kind, group, dated, start, end, hours, voucher, price, weights, need,
                max_hours, voucher_cap, limits, pinned, node_limit, tolerance, which, value, exact, found, chosen):
    """Searches teachers `which` (indices), in parallel over that list: a range over all teachers skipping
    the inactive ones would give a thread none of a slice's work when the slice lies in the other's half."""
    for i in prange(which.shape[0]):
        t = which[i]
        v, e, f = _teacher_route(t, first, act, kind, group, dated, start, end, hours, voucher, price, weights,
                                 need, max_hours, voucher_cap, limits, pinned, node_limit, tolerance[t], chosen)
        value[t] = v
        exact[t] = e
        found[t] = f


def warm_up() -> float:
    """Loads the compiled search from numba's cache or, the first time after installation, compiles it
    (about half a minute on 2 cores); returns the seconds it took. Called before a solve's clock starts."""
    from .greedy import warm_up as warm_up_greedy  # (greedy imports this module)

    started = time.perf_counter()
    warm_up_greedy()
    if not _all_routes.signatures:
        one = np.zeros(1, dtype=np.int64)
        # The argument types of RoutePricer's calls (activity int32, kind int8): one compiled signature.
        _all_routes(np.array([0, 1], dtype=np.int64), np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int8), one,
                    np.zeros(1, dtype=bool), one, one,
                    np.zeros(1), np.zeros(1), np.zeros(1), np.ones((1, 1)), np.ones((1, 1)), np.ones(1),
                    np.ones(1), np.ones(3, dtype=np.int64), np.zeros(1, dtype=bool), 10, np.zeros(1),
                    np.zeros(1, dtype=np.int64), np.zeros(1), np.zeros(1, dtype=bool), np.zeros(1),
                    np.zeros(1, dtype=bool))
    return time.perf_counter() - started


class RoutePricer:
    """Each teacher's best route under prices; arrays laid out once for the numba kernel.

    With `teachers` (bool over teachers), only theirs: the kernel's arrays hold their options alone
    (`options`, the region's option indices in the pricer's order), and prices are given in that order.
    A sample of a big region (engine.solver.decompose) is priced at its own cost this way."""

    def __init__(self, inst: Instance, teachers: np.ndarray | None = None) -> None:
        acts, opts = inst.activities, inst.options
        self.inst = inst
        n_teachers = len(inst.need)
        if teachers is None:
            self.teachers, self.options, first = np.arange(n_teachers), None, opts.first.astype(np.int64)
            own = slice(None)
        else:
            self.teachers = np.flatnonzero(teachers)
            counts = np.diff(opts.first)[self.teachers]
            first = np.r_[0, np.cumsum(counts)].astype(np.int64)
            own = self.options = np.repeat(opts.first[self.teachers] - first[:-1], counts) + np.arange(first[-1])
        # Per option: 4-byte activity, 1-byte kind, the hours as the instance holds them (no copy where the
        # pricer prices the whole region): memory grows with the options, and big regions have tens of millions.
        act = opts.activity[own].astype(np.int32, copy=False)
        self._fixed = (
            first, act, inst.kind[own], acts.group.astype(np.int64), acts.dated.astype(bool),
            acts.start.astype(np.int64), acts.end.astype(np.int64),
            inst.hours[own].astype(np.float64, copy=False), inst.voucher_rub[own].astype(np.float64),
        )
        mine = self.teachers
        self._per_teacher = (
            np.ascontiguousarray(acts.weights, dtype=np.float64), np.ascontiguousarray(inst.need[mine], dtype=np.float64),
            inst.region.teachers.max_hours[mine].astype(np.float64),
            inst.region.teachers.voucher_rub[mine].astype(np.float64), inst.limits.astype(np.int64),
            np.ascontiguousarray(opts.pinned[own]),
        )
        self._need_total = inst.need[mine].sum(axis=1)
        self._option_teacher = np.repeat(np.arange(len(mine), dtype=np.int32), np.diff(first))
        self._next_slice = 0  # where a pricing cut short by its deadline stopped
        self.found = np.zeros(len(inst.need))  # see __call__

    def _search(self, price: np.ndarray, node_limit: int, tolerance: float, mask: np.ndarray, value: np.ndarray,
                exact: np.ndarray, found: np.ndarray, chosen: np.ndarray) -> None:
        """The kernel over the teachers of `mask`, writing their entries of value, exact and found."""
        # Small chunks handed out as threads free up: a few teachers' searches cost a thousand times
        # the median one's, and equal shares fixed in advance leave a thread idle behind them.
        with parallel_chunksize(PARALLEL_CHUNK):
            _all_routes(*self._fixed, price, *self._per_teacher, node_limit, tolerance * self._need_total,
                        np.flatnonzero(mask), value, exact, found, chosen)

    def gather(self, values: np.ndarray) -> np.ndarray:
        """Values over the region's options, in the pricer's order."""
        return values if self.options is None else values[self.options]

    def __call__(self, price: np.ndarray, node_limit: int = NODE_LIMIT, tolerance: float = 0.0,
                 active: np.ndarray | None = None, deadline: float | None = None):
        """(z per teacher, exact per teacher, bool over options of the best routes) at option prices (in the
        pricer's order: see `gather`). The results are over the region's teachers and options (0 and
        exact for teachers not the pricer's).

        With `tolerance` > 0, a teacher's search stops once no route can beat the best found by more than
        that share of her need, and z is the best found plus that share: still a proof, found faster.
        Only `active` teachers are searched (z = 0 and no route for the others).

        With a `deadline` (time.perf_counter()), teachers are searched in slices, and those whose slice
        would start past it are not searched: their z is then the search's bound at its root (a proof still,
        weaker; counted as not exact; no route), and the next call starts where this one stopped.

        Afterwards `found` holds, over the region's teachers, the value at these prices of the route each
        was given (0 for those not searched): z - found is what her search left unproved."""
        n_teachers = len(self.teachers)
        value = np.zeros(n_teachers)
        found = np.zeros(n_teachers)
        exact = np.zeros(n_teachers, dtype=bool)
        chosen = np.zeros(len(self._option_teacher), dtype=bool)
        wanted = np.ones(n_teachers, dtype=bool) if active is None else active[self.teachers]
        price = np.ascontiguousarray(price, dtype=np.float64)
        if deadline is None:
            slices = [wanted]
        else:
            order = np.roll(np.arange(n_teachers), -self._next_slice)
            slices = []
            for part in np.array_split(order, DEADLINE_SLICES):
                mask = np.zeros(n_teachers, dtype=bool)
                mask[part] = wanted[part]
                slices.append(mask)
        searched = np.zeros(n_teachers, dtype=bool)
        for mask in slices:
            if deadline is not None and time.perf_counter() > deadline and searched.any():
                break
            self._search(price, node_limit, tolerance, mask, value, exact, found, chosen)
            searched |= mask
        left = wanted & ~searched
        if left.any():
            # The search's root bound for those not searched (node limit 0: their options sorted and
            # bounded, no route explored); the routes it marks (their pins) are not reported.
            self._search(price, 0, tolerance, left, value, np.zeros(n_teachers, dtype=bool), np.zeros(n_teachers),
                         np.zeros(len(chosen), dtype=bool))
            exact[left] = False
            self._next_slice = int(order[np.flatnonzero(left[order])[0]])
        exact[~wanted] = True
        if self.options is None:
            self.found = found
            return value, exact, chosen
        value_all, exact_all = np.zeros(len(self.inst.need)), np.ones(len(self.inst.need), dtype=bool)
        value_all[self.teachers], exact_all[self.teachers] = value, exact
        self.found = np.zeros(len(self.inst.need))
        self.found[self.teachers] = found
        chosen_all = np.zeros(self.inst.n_options, dtype=bool)
        chosen_all[self.options[chosen]] = True
        return value_all, exact_all, chosen_all
