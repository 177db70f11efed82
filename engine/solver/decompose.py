"""Dantzig-Wolfe decomposition: routes as columns, capacities and budgets as the only shared rows.

The master LP chooses, for each teacher, a mix of known routes (at most one in all; exactly one for a
teacher with pinned options, whose every route holds them) so that seats and budgets are not exceeded.
Its row prices lambda go to the pricing step (engine.solver.routes), which finds each teacher's best
route at those prices over *all* her options; that gives

* a proved bound, by Lagrangian duality: for any lambda >= 0 and any plan that obeys the rules,
  objective <= L(lambda) = sum_r lambda_r limit_r + sum_t z_t(lambda);
* new columns: the routes that beat their price.

With pools (engine.solver.pools) a pool's seats are one row: its price is the price of any of its
seats, and the bound is that of the pooled problem, whose optimum is the region's.

The loop stops when the master's value meets the best bound (the LP over all routes is solved), when
the bound proves the start plan within the gap limit, or at its time. Measured on altai-krai at 3,000
teachers (2026-11-28 06:31 UTC, load average 13 on 2 cores): from the first prices read off the
greedy plan (Duals.of_plan), 10 rounds in 3.2 s reach bound 803.9 and master 803.4, where the LP
relaxation over options gives 852.6.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from .bound import relative_gap
from .greedy import Residuals
from .instance import Instance
from .master import WarmMaster
from .routes import RoutePricer

# Pricing effort: per teacher, the search stops after this many nodes (her bound is then what is left
# open) or once no route beats the best found by more than this share of her need.
NODE_LIMIT = 30_000
FIRST_NODE_LIMIT = 300  # in the first pricings, whose prices are rough
# A sample's pricing searches less deep: its bound only steers its own rounds, and on krasnoyarsk-krai
# 30,000 nodes cost twice the CPU of 3,000 (measured 2026-11-28: 16.9 s against 8.1 s per pricing).
SAMPLE_NODE_LIMIT = 3000
SHALLOW_NODE_LIMIT = 3000  # a deeper search (Decomposition.price) first takes everyone this deep
# ... and goes deeper only when what the shallow searches left unproved is at least this share of the gap
# between the bound and the best plan or master value known: far from convergence the deep pass costs
# more than a round and moves the bound less (krasnoyarsk-krai at 60 s, 2026-11-28: 17 s for 174
# points of slack, with the bound 1,000 points above the master).
DEEPEN_SHARE = 0.25
# Routes of a group in Decomposition.improve_plan: this many per second of its time, within these limits
# (altai-krai, 6 s: one group of 10,000 routes raised the plan by 0.36%, four of 5,000 by 0.2%).
ROUTE_MIP_COLUMNS = 10_000
ROUTE_MIP_MIN_COLUMNS = 2000
ROUTE_MIP_COLUMNS_PER_SECOND = 1500
TOLERANCE = 2e-4
# Past this many master columns per teacher, unused ones furthest from entering are dropped (they come
# back if pricing finds them again): keeps the LP small.
COLUMNS_PER_TEACHER = 4
SMOOTHING = 0.5  # weight of the best prices so far in the prices of the next pricing
MISPRICING_STEP = 0.3  # what a mis-pricing takes off that weight
SAMPLED_SMOOTHING = 0.8  # that weight at first when the first prices are a sample's or a neighbour's
# Past this many teachers the first rounds solve the master by its smoothed dual, for SMOOTH_SHARE of
# the time; then the master LP over the routes with weight above UNUSED_WEIGHT.
EXACT_MASTER_TEACHERS = 5000
SMOOTH_SHARE = 0.45
UNUSED_WEIGHT = 1e-5
_CLOSED = 1e9  # the price of an option that can no longer be taken
# Rounding prices routes at this share of the master's prices: many teachers are indifferent at full
# prices between a route and none, and the discount tips them towards a route.
PRICE_DISCOUNT = 0.9
CLEARING_SHARE = 0.5  # of an activity's clearing price taken alone, in the first prices (Duals.of_plan)
# Regions of at least SAMPLE_LEVEL x SAMPLE_TEACHERS teachers take their first prices from a sample of a
# 1/SAMPLE_LEVEL share of them (at least SAMPLE_TEACHERS), in at most SAMPLE_SHARE of the decomposition's
# time, until its master is within SAMPLE_GAP of its bound (Decomposition._sampled_prices).
SAMPLE_TEACHERS = 1000
SAMPLE_LEVEL = 8
SAMPLE_SHARE = 0.4
SAMPLE_GAP = 0.005
# ... or until neither its master nor its bound has moved by SAMPLE_STALL (relative) in SAMPLE_STALL_ROUNDS
# rounds: the rest of its gap is its cut searches' slack, which more rounds at the same prices do not
# close (measured on altai-krai: 8 rounds, 6 s, at master 1,141.5 and bound 1,147.5 before its time ran out).
SAMPLE_STALL = 1e-4
SAMPLE_STALL_ROUNDS = 3
# A big region's rounds stop once a round has moved neither the master nor the bound by PLAN_STALL (relative):
# the gap left is then mostly the plan's (the master's routes rounded), which the time left closes better
# (measured on altai-krai at 45 s: a round of 3.5 s moved the bound by 0.04%; 6 s of the MIP over routes
# raised the plan by 0.24%). Only once the master is within PLAN_STALL_GAP of the bound: further off, the rounds
# still have that much to close (a region of 7,992 teachers whose first round on the exact master did not move
# its bound stopped at 0.31%, where its rounds went on to 0.12%).
PLAN_STALL = 5e-4
PLAN_STALL_GAP = 2e-3


@dataclass
class Duals:
    capacity: np.ndarray  # points per seat, per activity
    municipal: np.ndarray  # points per rouble, per municipality
    region: float  # points per rouble

    def option_price(self, inst: Instance, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """What each option (of `idx`) pays for the seat and money it uses."""
        return self.capacity[inst.options.activity[idx]] \
            + (self.municipal[inst.municipality[idx]] + self.region) * inst.budget_rub[idx]

    @classmethod
    def zero(cls, inst: Instance) -> "Duals":
        return cls(np.zeros(len(inst.activities)), np.zeros(len(inst.region.municipalities)), 0.0)

    @classmethod
    def from_rows(cls, inst: Instance, tags, prices: np.ndarray) -> "Duals":
        """From prices of the master's coupling rows (in the order of `tags`, convexity rows left out),
        budget rows being shares of their limits."""
        duals = cls.zero(inst)
        first = 0
        for tag, keys in tags:
            part = prices[first:first + len(keys)]
            first += len(keys)
            if tag == "capacity":
                duals.capacity[keys] = part
            elif tag == "municipal":
                duals.municipal[keys] = part / inst.region.budgets.municipality_rub[keys]
            elif tag == "region":
                duals.region = float(part.sum()) / float(inst.region.budgets.region_rub)
        return duals

    def to_rows(self, inst: Instance, tags) -> np.ndarray:
        """The inverse of from_rows."""
        parts = []
        for tag, keys in tags:
            if tag == "capacity":
                parts.append(self.capacity[keys])
            elif tag == "municipal":
                parts.append(self.municipal[keys] * inst.region.budgets.municipality_rub[keys])
            elif tag == "region":
                parts.append(np.full(len(keys), self.region * float(inst.region.budgets.region_rub)))
        return np.concatenate(parts) if parts else np.zeros(0)

    def toward(self, other: "Duals", share: float) -> "Duals":
        """(1 - share) * self + share * other."""
        return Duals((1 - share) * self.capacity + share * other.capacity,
                     (1 - share) * self.municipal + share * other.municipal,
                     (1 - share) * self.region + share * other.region)

    @classmethod
    def of_plan(cls, inst: Instance, chosen: np.ndarray, options: np.ndarray | None = None,
                scale: float = 1.0) -> "Duals":
        """First prices, as an auction would set them, from a plan and from the demand for each seat:

        * a full activity costs at least what its weakest user in the plan gains from it (those who
          would gain less do not want it);
        * any activity costs at least CLEARING_SHARE of its clearing price taken alone: the value alone
          of the (capacity + 1)-th teacher who wants it most (at that price no more teachers than seats
          want it, if it were all they could have; shared, since each teacher takes only a few);
        * a spent budget, per rouble, the median gain per rouble of what the plan pays from it.

        Any prices >= 0 give a valid bound; measured on altai-krai these give a first bound of 10,577
        where none give 17,644 (greedy plan: 6,133), and a pricing 4 times faster.

        For a sample of the teachers sharing `scale` of the seats and budgets, `options` are the sample's:
        clearing prices are read off them alone."""
        duals = cls.zero(inst)
        idx = np.flatnonzero(chosen & ~inst.options.pinned)
        if len(idx) == 0:
            return duals
        teacher, act = inst.options.teacher[idx], inst.options.activity[idx]
        cover = np.zeros_like(inst.need)
        np.add.at(cover, teacher, inst.activities.weights[act])
        without = np.minimum(1.0, cover[teacher] - inst.activities.weights[act])
        gain = (inst.need[teacher] * (np.minimum(1.0, cover[teacher]) - without)).sum(axis=1) - inst.solver_cost[idx]
        gain = np.maximum(gain, 0.0)
        residuals = Residuals(inst, chosen)
        full = residuals.capacity[act] <= 0
        weakest = np.full(len(inst.activities), np.inf)
        np.minimum.at(weakest, act[full], gain[full])
        duals.capacity = np.maximum(np.where(np.isfinite(weakest), weakest, 0.0),
                                    CLEARING_SHARE * _clearing_prices(inst, options, scale))
        budget = inst.budget_rub[idx].astype(float)
        paid = budget > 0
        if paid.any():
            per_rouble = np.maximum(gain[paid] - duals.capacity[act[paid]], 0.0) / budget[paid]
            largest = float(budget.max())
            if residuals.region < largest:
                duals.region = float(np.median(per_rouble))
            else:
                muni = inst.municipality[idx][paid]
                spent = residuals.municipal[muni] < largest
                for m in np.unique(muni[spent]).tolist():
                    duals.municipal[m] = float(np.median(per_rouble[muni == m]))
        return duals

    def value_of_limits(self, inst: Instance) -> float:
        budgets = inst.region.budgets
        municipal = np.where(budgets.municipality_rub > 0, budgets.municipality_rub, 0)
        return float(self.capacity @ inst.activities.capacity + self.municipal @ municipal
                     + self.region * budgets.region_rub)


@dataclass
class MasterModel:
    """The master over the known routes: rows are convexity per teacher (`tags[0]`), then coupling."""

    value: np.ndarray  # per route
    matrix: sp.csr_matrix
    upper: np.ndarray
    lower: np.ndarray  # 1 for the convexity rows of teachers with pins, -inf elsewhere
    tags: list  # (row kind, keys) in row order
    options: np.ndarray  # the routes' options, route after route
    column: np.ndarray  # the route of each of `options`
    route_teacher: np.ndarray

    @property
    def n_convexity(self) -> int:
        return len(self.tags[0][1])


@dataclass
class Round:
    seconds: float
    columns: int
    master: float  # the master LP's value: what the known routes can do, fractionally
    bound: float  # L at the master's prices (a proof)
    inexact: int  # teachers whose search hit the node limit
    master_seconds: float = 0.0
    pricing_seconds: float = 0.0
    smoothed_master: bool = False  # the master was solved by its smoothed dual (an estimate of the LP)


class Decomposition:
    def __init__(self, inst: Instance, pricer: RoutePricer | None = None, sample: np.ndarray | None = None,
                 scale: float = 1.0) -> None:
        """`sample` (bool over teachers): the decomposition of those teachers alone, sharing `scale` of the
        seats and budgets; its prices approximate the whole region's (see `run`), its bound bounds nothing."""
        self.inst = inst
        self.sample, self.scale = sample, scale
        self.members = np.ones(len(inst.need), dtype=bool) if sample is None else sample
        # A sample's pricer holds its own options alone (RoutePricer.options), priced in that order.
        self.pricer = RoutePricer(inst, sample) if sample is not None else pricer or RoutePricer(inst)
        self._keys: set[tuple[int, ...]] = set()
        self._routes: list[tuple[int, ...]] = []
        self.x = np.zeros(0)
        self.best_bound = np.inf
        self.best_duals: Duals | None = None
        self.best_routes: np.ndarray | None = None  # each teacher's best route at the best duals
        self.last_duals: Duals | None = None
        pins = np.unique(inst.options.teacher[inst.options.pinned])
        self.teachers_with_pins = pins[self.members[pins]]
        self._lp: WarmMaster | None = None  # the master LP, built at its first solve
        self.final_master: float | None = None  # the master's value when solved after the last round only
        self.reference = -np.inf  # the best plan's or master LP's value known: what the bound is closing on
        self.improve_stats: dict = {}  # what the last improve_plan did

    @property
    def n_columns(self) -> int:
        return len(self._routes)

    def add(self, chosen: np.ndarray) -> int:
        """Adds each teacher's route in `chosen` (bool over options) as a column; returns how many were new."""
        return self._add_keys(tuple(route.tolist()) for _, route in self._routes_in(chosen))

    def _add_keys(self, keys) -> int:
        """Adds the routes (tuples of option indices) not yet known as columns; returns how many were new."""
        added = 0
        for key in keys:
            if key not in self._keys:
                self._keys.add(key)
                self._routes.append(key)
                added += 1
        return added

    def _routes_in(self, chosen: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(teacher, her options) for each teacher with options in `chosen` (bool over options)."""
        idx = np.flatnonzero(chosen)
        if len(idx) == 0:
            return []
        teacher = self.inst.options.teacher[idx]
        cuts = np.flatnonzero(np.diff(teacher)) + 1
        return list(zip(teacher[np.r_[0, cuts]].tolist(), np.split(idx, cuts)))

    def _drop(self, mask: np.ndarray) -> None:
        if not mask.any():
            return
        for j in np.flatnonzero(mask):
            self._keys.discard(self._routes[j])
        self._routes = [r for r, gone in zip(self._routes, mask) if not gone]
        self.x = self.x[~mask[:len(self.x)]]
        if self._lp is not None:
            self._lp.delete(mask)

    def _columns(self):
        lengths = np.fromiter((len(r) for r in self._routes), dtype=np.int64, count=len(self._routes))
        options = np.fromiter((o for r in self._routes for o in r), dtype=np.int64, count=int(lengths.sum()))
        column = np.repeat(np.arange(len(self._routes)), lengths)
        return options, column

    def _master(self) -> MasterModel:
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
        block(act, column, np.ones(len(options)), self.scale * acts.capacity.astype(float), "capacity")
        budget = inst.budget_rub[options].astype(float)
        limits = inst.region.budgets.municipality_rub.astype(float)
        muni = inst.municipality[options]
        paid = (budget > 0) & (limits[muni] > 0)
        if paid.any():
            block(muni[paid], column[paid], budget[paid] / limits[muni[paid]], self.scale, "municipal")
        region_limit = float(inst.region.budgets.region_rub)
        if region_limit > 0 and (budget > 0).any():
            spent = budget > 0
            block(np.zeros(spent.sum(), dtype=np.int64), column[spent], budget[spent] / region_limit, self.scale,
                  "region")
        matrix = sp.vstack(blocks).tocsr()
        lower = np.full(len(np.concatenate(rhs)), -np.inf)
        convexity = tags[0][1]
        lower[:len(convexity)] = np.where(np.isin(convexity, self.teachers_with_pins), 1.0, -np.inf)
        return MasterModel(value, matrix, np.concatenate(rhs), lower, tags, options, column, route_teacher)

    def solve_master_smooth(self, start: Duals | None) -> tuple[float, Duals]:
        """Like solve_master, by the smoothed dual (_smooth_master_duals); the value returned is the
        restricted Lagrangian's at the prices found, an upper estimate of the master LP's."""
        inst = self.inst
        if not self._routes:
            return 0.0, Duals.zero(inst)
        master = self._master()
        coupling = slice(master.n_convexity, None)
        may_skip = ~np.isin(np.arange(len(inst.need)), self.teachers_with_pins)  # indexed by teacher
        initial = np.zeros(len(master.upper) - master.n_convexity) if start is None \
            else start.to_rows(inst, master.tags[1:])
        lam, restricted, self.x = _smooth_master_duals(master.value, master.matrix[coupling],
                                                       master.upper[coupling], master.route_teacher, may_skip,
                                                       initial)
        return restricted, Duals.from_rows(inst, master.tags[1:], lam)

    def solve_master(self, time_limit: float) -> tuple[float, Duals]:
        """The master LP (engine.solver.master: one HiGHS model, warm-started): its value and row prices."""
        inst = self.inst
        if not self._routes:  # no route is worth anything at any prices: the empty plan is optimal
            return 0.0, Duals.zero(inst)
        if self._lp is None:
            self._lp = WarmMaster(inst, self.teachers_with_pins, scale=self.scale, teachers=self.sample)
        self._lp.add(self._routes[self._lp.n_columns:])
        value, x, reduced, capacity, municipal, region = self._lp.solve(time_limit)
        if x is None:
            return float("nan"), Duals.zero(inst)
        self.x = x
        excess = len(x) - COLUMNS_PER_TEACHER * int(self.members.sum())
        if excess > 0:
            unused = np.flatnonzero((x <= 1e-9) & (reduced < -1e-6))
            worst = unused[np.argsort(reduced[unused])[:excess]]
            self._drop(np.isin(np.arange(len(x)), worst))
        return value, Duals(capacity.copy(), municipal, region)

    def _solve_master(self, smooth: bool, time_limit: float) -> tuple[float, Duals]:
        """The master of a round: by its smoothed dual from the best prices so far, or as the LP."""
        return self.solve_master_smooth(self.best_duals) if smooth else self.solve_master(time_limit)

    def price(self, duals: Duals, node_limit: int = NODE_LIMIT, tolerance: float = TOLERANCE,
              deadline: float | None = None):
        """L at these prices (a proof) and each teacher's best route; keeps the best bound found. Past the
        deadline, teachers not yet searched count with the search's root bound (RoutePricer)."""
        prices = self._option_prices(duals)
        # Deepening: everyone to SHALLOW_NODE_LIMIT nodes, then those left open to `node_limit`, in at most
        # half the time left (the rounds after it need the rest); the two passes' bounds are both proofs,
        # and the lower one counts.
        shallow = min(node_limit, SHALLOW_NODE_LIMIT)
        limits = self.scale * duals.value_of_limits(self.inst)
        z, exact, routes = self.pricer(prices, shallow, tolerance, deadline=deadline)
        now = time.perf_counter()
        if node_limit > shallow and not exact.all() and (deadline is None or now < deadline) \
                and self._worth_deepening(limits + float(z.sum()), z, exact):
            again = ~exact
            z_deep, exact_deep, routes_deep = self.pricer(prices, node_limit, tolerance, active=again,
                                                          deadline=None if deadline is None else (now + deadline) / 2)
            z = np.where(again, np.minimum(z, z_deep), z)
            found = again & exact_deep  # searched to the end: her best route
            mine = found[self.inst.options.teacher]
            routes[mine] = routes_deep[mine]
            exact |= found
        bound = limits + float(z.sum())
        bound += 1e-9 * max(1.0, abs(bound))  # floating-point safety margin
        if bound < self.best_bound:
            self.best_bound, self.best_duals, self.best_routes = bound, duals, routes
        return bound, routes, int((~exact).sum())

    def _worth_deepening(self, bound: float, z: np.ndarray, exact: np.ndarray) -> bool:
        """Whether the searches cut short hold back enough of `bound` (the shallow pass's) to search them
        deeper (DEEPEN_SHARE)."""
        if not np.isfinite(self.reference):
            return True
        unproved = float((z - self.pricer.found)[~exact].sum())
        return unproved >= DEEPEN_SHARE * (bound - self.reference)

    def _option_prices(self, duals: Duals) -> np.ndarray:
        """The pricing's price of each option: its cost (less any bonus) and the seats and money it uses; a
        sample's pricing reads only its own options."""
        own = slice(None) if self.pricer.options is None else self.pricer.options
        return self.inst.solver_cost[own] + duals.option_price(self.inst, own)

    def run(self, start: np.ndarray, time_limit: float, on_round: Callable[[Round], None] | None = None,
            max_rounds: int = 200, should_stop: Callable[[], bool] | None = None,
            gap_limit: float = 0.0, master_gap: float = 0.0, prices: Duals | None = None) -> list[Round]:
        """Column generation from the routes of `start` (a plan) and of each teacher's best route at prices
        read off it;
        stops early once the bound proves `start` within `gap_limit` (SPEC's relative gap).

        In big regions the first rounds solve the master by its smoothed dual (cheap, rough prices while
        the routes known are few), then switch to the LP over the routes that mattered, whose prices
        are the ones that close the bound and whose solution is nearly a plan. After a sample's prices
        (the biggest regions), the smoothed dual goes on until it converges: there the LP over tens of
        thousands of teachers' routes costs several pricings per solve, and its warm starts stall
        (measured on altai-krai, 2026-11-28, 2 cores under load 4: at 90 s the smoothed rounds proved
        0.42%, the LP's 3.2% to 8.0%)."""
        started = time.perf_counter()
        deadline = started + time_limit  # a pricing that reaches it stops (RoutePricer's deadline)
        start = start & self.members[self.inst.options.teacher]
        self.add(start)
        incumbent = self.inst.solver_objective(start)
        self.reference = max(self.reference, incumbent)
        n_members = int(self.members.sum())
        # In big regions the first prices are a sample's (_sampled_prices); else they are read off the
        # start plan (Duals.of_plan): a first bound that already prices its scarcity, and routes that avoid
        # what it filled.
        # Given prices (a neighbouring solve's, as a sweep's next point) stand in for the sample's.
        first = prices
        if first is None and n_members >= SAMPLE_LEVEL * SAMPLE_TEACHERS:
            first = self._sampled_prices(start, SAMPLE_SHARE * time_limit, should_stop)
        deep = NODE_LIMIT if self.sample is None else SAMPLE_NODE_LIMIT
        nodes, settled_prices = deep, first is not None  # a sample's or a neighbour's
        if first is None:
            first, nodes = Duals.of_plan(self.inst, start, self.pricer.options, self.scale), FIRST_NODE_LIMIT
        pricing_started = time.perf_counter()
        _, routes, _ = self.price(first, node_limit=nodes, deadline=deadline)
        self.add(routes)
        if settled_prices:  # a plan can be priced at those prices even if no round follows (priced_plan)
            self.last_duals = first
        first_pricing = time.perf_counter() - pricing_started
        loop_started = time.perf_counter() - started  # (Round.seconds count from `started`)
        rounds: list[Round] = []
        smooth = n_members > EXACT_MASTER_TEACHERS
        alpha = SAMPLED_SMOOTHING if settled_prices else SMOOTHING
        while len(rounds) < max_rounds:
            elapsed = time.perf_counter() - started
            left = time_limit - elapsed
            # (The first round costs about what the first pricing did.)
            last = rounds[-1].seconds - (rounds[-2].seconds if len(rounds) > 1 else loop_started) if rounds \
                else first_pricing
            # A round that would end well past the time is not started.
            if left <= 0.5 * last or (should_stop and should_stop()):
                break
            if smooth and not settled_prices and elapsed > SMOOTH_SHARE * time_limit:
                smooth = False
                self._drop_unused()
            lp_started = time.perf_counter()
            master, duals = self._solve_master(smooth, left)
            if not np.isfinite(master):
                break
            self.last_duals = duals  # the prices at which self.x is the master's plan
            # (The smoothed master's value only estimates the LP's; if it is over, the searches go deeper
            # than they need.)
            self.reference = max(self.reference, master)
            pricing_started = time.perf_counter()
            # The first round searches less deep (but after a sample): its prices are still rough, and a
            # round cannot be cut.
            nodes = deep if rounds or settled_prices else FIRST_NODE_LIMIT
            # A mis-pricing: the routes found at the smoothed prices last round did not raise the master
            # LP's value, so none of them would enter it; pricing at the smoothed prices again would find
            # the same, round after round. This round prices at the master's own prices, and the weight of
            # the best prices drops.
            stalled = not smooth and bool(rounds) and not rounds[-1].smoothed_master \
                and master <= rounds[-1].master + 1e-9 * max(1.0, abs(master))
            if stalled:
                alpha = max(0.0, alpha - MISPRICING_STEP)
            if self.best_duals is not None and not stalled:
                # Wentges smoothing: price between the best prices so far and the master's, which
                # swing wildly while the master knows few routes; fall back to the master's if that
                # finds nothing new. The weight of the best prices adjusts itself (below).
                centre = self.best_duals
                bound, routes, inexact = self.price(centre.toward(duals, 1 - alpha), node_limit=nodes,
                                                    deadline=deadline)
                new = self.add(routes)
                alpha = self._smoothing(alpha, centre, duals, routes)
                if new == 0:
                    bound, routes, inexact = self.price(duals, node_limit=nodes, deadline=deadline)
                    new = self.add(routes)
            else:
                bound, routes, inexact = self.price(duals, node_limit=nodes, deadline=deadline)
                new = self.add(routes)
            now = time.perf_counter()
            rounds.append(Round(now - started, self.n_columns, master, bound, inexact,
                                pricing_started - lp_started, now - pricing_started, smooth))
            if on_round:
                on_round(rounds[-1])
            # Converged: the bound is the master's value but for the search tolerance. (The smoothed
            # master's value only estimates the LP's: there convergence means switching to the LP.)
            slack = TOLERANCE * float(self.inst.need[self.members].sum()) + 1e-6 * max(1.0, abs(master))
            if relative_gap(incumbent, self.best_bound) <= gap_limit:
                break  # the plan at hand is proved good enough
            if not smooth and relative_gap(master, self.best_bound) <= master_gap:
                break  # the LP over the routes is solved closely enough
            if self.sample is not None and _stalled(rounds, SAMPLE_STALL, SAMPLE_STALL_ROUNDS):
                break  # a sample's prices are as good as its rounds make them
            if self.sample is None and n_members > EXACT_MASTER_TEACHERS and (settled_prices or not smooth) \
                    and self.best_bound - master <= PLAN_STALL_GAP * abs(master) and _stalled(rounds, PLAN_STALL, 1):
                break  # what is left of the gap is the plan's: the time goes to making it (solve's route MIP)
            if new == 0 or self.best_bound - master <= slack:
                if not smooth:
                    break
                smooth = False
                self._drop_unused()
        if not rounds and self.sample is None and self._routes and time.perf_counter() < deadline \
                and not (should_stop and should_stop()):
            # No round fitted after the first pricing (the biggest regions at their limit), but the master
            # over the routes known is still solved once: its solution is what the plan is rounded from.
            # Measured on krasnoyarsk-krai at 60 s: the plan priced at the sample's prices alone was
            # 8,341; one master over the same routes makes it about 9,370.
            master, duals = self._solve_master(smooth, deadline - time.perf_counter())
            if np.isfinite(master):
                self.last_duals = duals
                self.final_master = master
        return rounds

    def _sampled_prices(self, start: np.ndarray, time_limit: float,
                        should_stop: Callable[[], bool] | None) -> Duals | None:
        """Prices from a random sample of the teachers (a 1/SAMPLE_LEVEL share, at least SAMPLE_TEACHERS)
        sharing that part of every seat and budget, decomposed to near convergence (sampled again inside
        when still big); its routes join this master.

        The prices of a region's seats and money are set by its many teachers as a market's are: a
        random part of them facing that part of the supply sets about the same prices, at a fraction of
        the cost per round. Measured on altai-krai (21,000 teachers; 2026-11-28, 2 cores, loaded): the
        whole region priced at the prices of a 10% sample after 10 of its rounds (31 s) gave a bound of
        9,598, where 5 rounds of the whole region (35 s) had reached 11,503 (plan: 8,822). Any prices
        give a valid bound: the sample only chooses them."""
        members = np.flatnonzero(self.members)
        size = max(SAMPLE_TEACHERS, len(members) // SAMPLE_LEVEL)
        rng = np.random.default_rng(self.inst.params.seed)
        sample = np.zeros(len(self.inst.need), dtype=bool)
        sample[rng.choice(members, size=size, replace=False)] = True
        share = size / len(members)
        sub = Decomposition(self.inst, sample=sample, scale=self.scale * share)
        sub.run(start, time_limit, should_stop=should_stop, master_gap=SAMPLE_GAP)
        self._add_keys(sub._routes)
        return sub.best_duals

    def _smoothing(self, alpha: float, centre: Duals, master: Duals, routes: np.ndarray) -> float:
        """Self-adjusting Wentges smoothing (Pessoa, Sadykov, Uchoa and Vanderbeck 2018, section 3): the
        subgradient of L at the prices just priced says whether L still falls from the centre towards the
        master's prices. If it does, the step was too timid: less weight on the centre; if it rises, the
        step went too far: more. Only the prices priced change; any of them gives a valid bound."""
        inst = self.inst
        idx = np.flatnonzero(routes)
        seats = np.bincount(inst.options.activity[idx], minlength=len(inst.activities))
        spent = np.bincount(inst.municipality[idx], weights=inst.budget_rub[idx],
                            minlength=len(inst.region.municipalities))
        limits = inst.region.budgets.municipality_rub
        scale = self.scale
        slope = float((scale * inst.activities.capacity - seats) @ (master.capacity - centre.capacity)
                      + (scale * np.where(limits > 0, limits, 0) - spent) @ (master.municipal - centre.municipal)
                      + (scale * inst.region.budgets.region_rub - spent.sum()) * (master.region - centre.region))
        if slope < 0:  # L falls on towards the master's prices
            return max(0.0, alpha - 0.1)
        return min(0.99, alpha + 0.1 * (1 - alpha))

    def _drop_unused(self) -> None:
        """Drops the routes the (smoothed) master gave no weight, but for those found since it was solved."""
        unused = np.zeros(len(self._routes), dtype=bool)
        unused[:len(self.x)] = self.x <= UNUSED_WEIGHT
        self._drop(unused)
        self.x = np.zeros(0)

    def priced_plan(self, duals: Duals, time_limit: float, max_passes: int = 8) -> np.ndarray:
        """A plan from each teacher's best route at `duals` (a Lagrangian heuristic).

        Routes that fit what is left of the seats and budgets are taken whole, teachers with the most
        to gain first; those who lose a seat or money are priced again without the full activities
        (and without options their municipality can no longer pay for) and try again."""
        inst, opts = self.inst, self.inst.options
        started = time.perf_counter()
        chosen = opts.pinned.copy()
        residuals = Residuals(inst, chosen)
        active = np.ones(len(inst.need), dtype=bool)
        # At the best prices many teachers are indifferent between a route and none (the LP mixes them):
        # a small discount tips them towards taking one.
        base_price = inst.solver_cost + PRICE_DISCOUNT * duals.option_price(inst)
        if len(self.x):
            # First the master's own choices, most certain first (x covers the routes known when the
            # master was solved; later ones were appended).
            options, column = self._columns()
            teacher_of = np.zeros(len(self._routes), dtype=np.int64)
            teacher_of[column] = opts.teacher[options]
            x = np.zeros(len(self._routes))
            x[:len(self.x)] = self.x
            # Every route the master uses, by weight: a teacher's favourite first, then her next ones.
            used = np.flatnonzero(x > 1e-6)
            used = used[np.argsort(-x[used], kind="stable")]
            members = np.split(options, np.cumsum(np.bincount(column, minlength=len(self._routes)))[:-1])
            for j in used.tolist():
                self._take(members[j], teacher_of[j], chosen, residuals, active)
        for _ in range(max_passes):
            if not active.any() or time.perf_counter() - started > time_limit:
                break
            closed = (residuals.capacity[opts.activity] <= 0) | (
                inst.budget_rub > np.minimum(residuals.municipal[inst.municipality], residuals.region))
            price = np.where(closed & ~opts.pinned, _CLOSED, base_price)
            # A plan needs good routes, not proofs: a shallow search, stopped at the time limit (teachers
            # not searched by then get no route from this pass).
            z, _, routes = self.pricer(price, SHALLOW_NODE_LIMIT, 0.0, active=active,
                                       deadline=started + time_limit)
            routes &= ~opts.pinned  # pinned ones are in the plan already
            offers = self._routes_in(routes)
            # Teachers with the most to gain first; everyone's route whole or not at all.
            offers.sort(key=lambda offer: -z[offer[0]])
            progress = False
            for t, route in offers:
                progress |= self._take(route, t, chosen, residuals, active)
            # Teachers whose best route is empty (or pins only) are done too.
            active &= np.isin(np.arange(len(active)), [t for t, _ in offers])
            if not progress:
                break
        return chosen

    def improve_plan(self, chosen: np.ndarray, time_limit: float, max_columns: int | None = None) -> np.ndarray:
        """`chosen` (a plan) improved group by group: HiGHS' MIP over all the routes known of a group of
        teachers, within the seats and money the rest of the plan leaves, everyone else's routes fixed.

        Groups are the teachers on whom the master's solution and the plan disagree most (the master's
        weight on routes other than hers in the plan), at most `max_columns` routes a group, while time
        is left. Each group's MIP starts nowhere better than the plan, and is taken only where it beats it."""
        started = time.perf_counter()
        if max_columns is None:  # a group's MIP should end in its time: smaller groups when it is short
            max_columns = int(np.clip(ROUTE_MIP_COLUMNS_PER_SECOND * time_limit, ROUTE_MIP_MIN_COLUMNS, ROUTE_MIP_COLUMNS))
        inst = self.inst
        self.add(chosen)  # the plan's own routes are columns too (appended: the master's x keeps its indices)
        weight = np.zeros(len(self._routes))
        weight[:len(self.x)] = self.x  # the master's solution over the routes it knew
        master = self._master()
        n_conv = master.n_convexity
        index = {key: j for j, key in enumerate(self._routes)}
        in_plan = np.zeros(len(self._routes))
        for _, route in self._routes_in(chosen):
            in_plan[index[tuple(route.tolist())]] = 1.0
        elsewhere = np.bincount(master.route_teacher, weights=weight * (1 - in_plan), minlength=len(inst.need))
        candidates = np.flatnonzero(elsewhere > 1e-3)
        candidates = candidates[np.argsort(-elsewhere[candidates], kind="stable")]
        columns_of = np.bincount(master.route_teacher, minlength=len(inst.need))
        coupling = master.matrix[n_conv:].tocsc()
        convexity = master.matrix[:n_conv].tocsc()
        used = coupling @ in_plan
        first = 0
        groups = improved = 0
        while first < len(candidates) and time.perf_counter() - started < time_limit:
            count = int(np.searchsorted(np.cumsum(columns_of[candidates[first:]]), max_columns)) or 1
            group = candidates[first:first + count]
            first += count
            mine = np.flatnonzero(np.isin(master.route_teacher, group))
            uses = coupling[:, mine]
            rows = np.flatnonzero(np.diff(uses.tocsr().indptr))
            a = uses[rows]
            limit = master.upper[n_conv:][rows] - used[rows] + a @ in_plan[mine]
            c = convexity[:, mine]
            conv_rows = np.flatnonzero(np.diff(c.tocsr().indptr))
            left = time_limit - (time.perf_counter() - started)
            if left <= 0.2:
                break
            result = milp(-master.value[mine],
                          constraints=[LinearConstraint(c[conv_rows], master.lower[conv_rows], 1.0),
                                       LinearConstraint(a, -np.inf, limit)],
                          integrality=np.ones(len(mine)), bounds=Bounds(0, 1),
                          options={"time_limit": left, "mip_rel_gap": 1e-4})
            groups += 1
            if result.x is None:
                continue
            take = np.round(result.x).astype(float)
            if master.value[mine] @ take <= master.value[mine] @ in_plan[mine] + 1e-9:
                continue
            improved += 1
            used += uses @ (take - in_plan[mine])
            in_plan[mine] = take
        self.improve_stats = {"route_mip_groups": groups, "route_mip_improved": improved}
        plan = np.zeros(inst.n_options, dtype=bool)
        plan[master.options[in_plan[master.column] > 0.5]] = True
        plan |= inst.options.pinned
        return plan

    def _take(self, route: np.ndarray, teacher: int, chosen, residuals: Residuals, active) -> bool:
        """Adds a teacher's route to the plan if what is left of seats and budgets allows it."""
        inst = self.inst
        if not active[teacher]:
            return False
        route = route[~inst.options.pinned[route]]
        acts = inst.options.activity[route]
        muni = inst.region.teacher_municipality[teacher]
        paid = float(inst.budget_rub[route].sum())
        if not ((residuals.capacity[acts] >= 1).all() and paid <= residuals.municipal[muni]
                and paid <= residuals.region):
            return False
        chosen[route] = True
        residuals.use(acts, muni, paid)
        active[teacher] = False
        return True

    def integer_plan(self, time_limit: float) -> np.ndarray | None:
        """A plan from the master's columns: HiGHS' MIP over them (one route per teacher, shared rows kept)."""
        if not self._routes:
            return None
        master = self._master()
        result = milp(-master.value, constraints=LinearConstraint(master.matrix, master.lower, master.upper),
                      integrality=np.ones(len(master.value)), bounds=Bounds(0, 1),
                      options={"time_limit": max(0.1, time_limit), "mip_rel_gap": 1e-5})
        if result.x is None:
            return None
        chosen = np.zeros(self.inst.n_options, dtype=bool)
        chosen[master.options[result.x[master.column] > 0.5]] = True
        return chosen


def _stalled(rounds: list[Round], tolerance: float, count: int) -> bool:
    """Neither the master's value nor the best bound moved by `tolerance` (relative) in the last `count`
    rounds."""
    if len(rounds) <= count:
        return False
    then, now = rounds[-count - 1], rounds[-1]
    best_then = min(r.bound for r in rounds[:-count])
    best_now = min(r.bound for r in rounds)
    scale = max(1.0, abs(now.master))
    return abs(now.master - then.master) <= tolerance * scale and best_then - best_now <= tolerance * scale


def _clearing_prices(inst: Instance, options: np.ndarray | None = None, scale: float = 1.0,
                     chunk: int = 1_000_000) -> np.ndarray:
    """Per activity, the value alone of its (capacity + 1)-th best option (0 if it has no more options
    than seats): the price at which, taken alone, it is wanted by no more teachers than it seats. Over
    `options` (all by default) and `scale` of the seats."""
    options = np.arange(inst.n_options) if options is None else options
    value = np.empty(len(options))
    for lo in range(0, len(options), chunk):
        value[lo:lo + chunk] = inst.standalone_value(options[lo:lo + chunk])
    act = inst.options.activity[options]
    order = np.lexsort((-value, act))
    starts = np.searchsorted(act[order], np.arange(len(inst.activities)))
    ends = np.r_[starts[1:], len(order)]
    position = starts + np.floor(scale * inst.activities.capacity).astype(np.int64)
    prices = np.zeros(len(inst.activities))
    contested = position < ends
    prices[contested] = np.maximum(value[order[position[contested]]], 0.0)
    return prices


def _smooth_master_duals(value, coupling, limits, teacher, may_skip, start, stages=(0.02, 0.005, 0.001),
                         iterations=150):
    """Prices of the coupling rows that minimise the Lagrangian restricted to the known routes,

        f(lambda) = limits'lambda + sum_t max(0 if t may skip, max over t's routes j of value_j - (coupling'lambda)_j),

    which is the dual of the master LP. The max is smoothed (log-sum-exp at temperature tau, lowered
    stage by stage) and minimised by L-BFGS-B from `start`. Far cheaper than the LP on masters of
    hundreds of thousands of routes; any prices it returns are valid for the bound."""
    from scipy.optimize import minimize

    order = np.argsort(teacher, kind="stable")
    t_sorted = teacher[order]
    starts = np.flatnonzero(np.r_[True, t_sorted[1:] != t_sorted[:-1]])
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(order)]))
    skip = may_skip[t_sorted[starts]]
    v = value[order]
    u = coupling[:, order].tocsc()
    ut = u.T.tocsr()

    def restricted(lam):
        s = v - ut @ lam
        best = np.maximum.reduceat(s, starts)
        return float(limits @ lam + np.where(skip, np.maximum(best, 0.0), best).sum())

    lam = np.maximum(start, 0.0)
    for tau in stages:
        def f(x, tau=tau):
            s = v - ut @ x
            m = np.maximum.reduceat(s, starts)
            m = np.where(skip, np.maximum(m, 0.0), m)
            e = np.exp((s - m[group]) / tau)
            denom = np.add.reduceat(e, starts) + np.where(skip, np.exp(-m / tau), 0.0)
            value_ = float(limits @ x + (m + tau * np.log(denom)).sum())
            p = e / denom[group]
            return value_, limits - u @ p

        result = minimize(f, lam, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(lam),
                          options={"maxiter": iterations})
        lam = np.maximum(result.x, 0.0)
    # The smoothed master's weights of each route at the last temperature: a fractional plan.
    s = v - ut @ lam
    m = np.maximum.reduceat(s, starts)
    m = np.where(skip, np.maximum(m, 0.0), m)
    e = np.exp((s - m[group]) / stages[-1])
    weight = np.empty(len(order))
    weight[order] = e / (np.add.reduceat(e, starts) + np.where(skip, np.exp(-m / stages[-1]), 0.0))[group]
    return lam, restricted(lam), weight
