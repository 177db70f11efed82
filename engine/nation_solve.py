"""The national solve (SPEC §7): Dantzig-Wolfe / Lagrangian decomposition over the federal rows.

The federal rows are the only ties between regions: seats of federal sessions (rule 12), the
federal budget and the regional quotas (rule 13). Priced at

    lambda_s >= 0  points per seat of federal session s,
    mu >= 0        points per rouble of the federal budget,
    nu_r >= 0      points per rouble of region r's quota,

the nation splits into its regions: region r is the regional problem in which a federal session s
costs (price_s / rub_per_point + lambda_s + (mu + nu_r) * price_s) points (engine.nation.regional_view
adds the sessions, `solve(..., activity_price=...)` charges them). By Lagrangian duality

    bound(lambda, mu, nu) = sum_r B_r + sum_s lambda_s seats_s + mu budget + sum_r nu_r quota_r

is a proved national bound, B_r being the regional engine's proved bound of the priced region.
Each region's plan is a column of a master over the regions' plans (one plan per region, the
federal rows as constraints): its LP gives the next prices (smoothed towards the prices of the
best bound, Wentges), and its MIP gives a national plan that obeys the federal rows exactly.
Every plan also enters with its federal assignments dropped (pinned ones kept), so the master
always has a plan. Rounds go on until the gap is within `gap_limit` or time is up; regions are priced
warm (from their last plan and shared-row prices) and only as exactly as the national gap needs.

A last round makes the plan: each region gets the federal seats its plan in the master's best national
plan uses, plus spare seats the federal budget and quotas could pay for were all taken (an allotment),
and is re-solved within them at true costs: the federal rows hold exactly whatever each region takes.

Pricing is done by `RegionPricer`s, in this process or in Ray actors (engine.nation_ray): the
driver here holds the master, the best bound and the best plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_matrix

from .nation import NationData, NationParams, regional_view
from .params import Params
from .problems import InputError, Problem
from .region import RegionData
from .solver.bound import relative_gap

SMOOTHING = 0.7  # weight of the best-bound prices in the next round's prices (Wentges)
# After a round whose prices did not improve the bound, the weight moves this share of the way to 1 (the
# next prices stay closer to the best ones); a round that improves it resets the weight to SMOOTHING.
SMOOTHING_BACKOFF = 0.5
# The rounds stop once the best bound and the best plan have not moved by this (relative) for
# STALL_ROUNDS rounds: what is left is the duality gap of the federal rows' integrality, which more
# prices do not close (measured on small nations: the bound settles within 5-10 rounds).
STALL_TOLERANCE = 1e-6
STALL_ROUNDS = 4
OPTIMAL_TOLERANCE = 1e-6
MASTER_MIP_SECONDS = 2.0
# The master's MIP before the allotment round makes the plan the regions are allotted from: it gets more,
# this share of the whole time (at most MASTER_MIP_FINAL_SECONDS), kept back with the allotment's.
# (Measured on the 2% russia nation: at 2 s a round over 3,000-6,000 columns the MIP's plan stayed at its
# third round's while the master's LP went on rising.)
MASTER_MIP_FINAL_SHARE = 0.05
MASTER_MIP_FINAL_SECONDS = 15.0
# A pricing round proves each region only within a gap (its looseness is all a national bound loses by
# it): PRICING_GAP_SHARE of the national gap of the moment, between the planner's `gap_limit` and
# PRICING_GAP_MAX (the first round, at prices 0, has no national gap yet). And a region gets at most
# PRICING_FLOOR_S + PRICING_PER_TEACHER_S per teacher: many cheap rounds move the prices further than a
# few long ones (measured on the 2% russia nation, ~250 teachers a region on 2 loaded cores: 0.5-2.7 s a
# region at 0.2%, most of it the exact MIP after the decomposition; 100 s a round of 85 regions).
PRICING_GAP_SHARE = 0.2
PRICING_GAP_MAX = 0.05
PRICING_FLOOR_S = 0.3
PRICING_PER_TEACHER_S = 0.004
# The last round gives each region its seats of the master's best plan (an allotment) and re-solves it
# within them, proved within ALLOTMENT_GAP_SHARE of the national gap (at least the planner's gap_limit);
# its time is kept back from the pricing rounds: this many times the longest pricing round, and at least
# ALLOTMENT_MIN_SHARE of the whole time.
ALLOTMENT_GAP_SHARE = 0.05
ALLOTMENT_ROUNDS = 1.2
ALLOTMENT_MIN_SHARE = 0.1


@dataclass(frozen=True)
class FederalPrices:
    seat: np.ndarray  # points per seat, per federal session
    budget: float  # points per rouble of the federal budget
    quota: np.ndarray  # points per rouble of each region's quota (0 where none)

    @classmethod
    def zero(cls, n_sessions: int, n_regions: int) -> "FederalPrices":
        return cls(np.zeros(n_sessions), 0.0, np.zeros(n_regions))

    def blend(self, other: "FederalPrices", weight: float) -> "FederalPrices":
        """weight * self + (1 - weight) * other."""
        return FederalPrices(weight * self.seat + (1 - weight) * other.seat,
                             weight * self.budget + (1 - weight) * other.budget,
                             weight * self.quota + (1 - weight) * other.quota)


@dataclass
class Column:
    """One region's plan: (teacher, activity) pairs of its regional view, and what it takes federally."""

    region: int
    teacher: np.ndarray
    activity: np.ndarray
    value: float  # SPEC §5 objective of the region, federal prices included
    sessions: np.ndarray  # federal session indices used (with repeats: one per seat)
    spend_rub: int  # federal money used

    def key(self) -> tuple:
        order = np.lexsort((self.activity, self.teacher))
        return self.region, self.teacher[order].tobytes(), self.activity[order].tobytes()


@dataclass
class Allotment:
    """What the last round gives a region: its column of the national plan (the seats it uses) and extra
    seats per federal session (nation's session index) that the federal rows can afford if all are used."""

    column: Column
    extra: np.ndarray
    gap: float = 0.0  # the region is solved within this gap (at least the planner's gap_limit)


@dataclass
class Pricing:
    region: int
    bound: float  # proved bound of the priced region
    columns: list[Column]
    status: str
    seconds: float
    value: float = 0.0  # the priced objective of its plan (columns[0]): bound - value is what it left unproved


class RegionPricer:
    """Region r priced at federal prices by the regional engine; keeps its view between rounds, and its
    last plan and shared-row prices, which start the next round's solve (warm)."""

    def __init__(self, nation_federal, region: RegionData, index: int, region_id: str, params: Params) -> None:
        from .nation import NationData

        self.index, self.region_id, self.params = index, region_id, params
        # A one-region nation gives the regional view: same code as the driver's, no copy of the nation.
        one = NationData("", region.period_start, region.period_end, (region_id,), ("",), (region,),
                         _federal_for(nation_federal, index))
        self.view = regional_view(one, 0)
        self.price_rub = nation_federal.session_price[self.view.federal_session]
        self.activity_offset = len(region.mentors) + len(region.site_sessions)
        self.size = len(region.teachers)
        self._start: list | None = None  # the last plan (AssignmentRef list)
        self._duals = None  # the last solve's prices of the region's shared rows (engine.solver Duals)

    def time_cap(self) -> float:
        return PRICING_FLOOR_S + PRICING_PER_TEACHER_S * self.size

    def _federal_activities(self) -> np.ndarray:
        return self.activity_offset + self.view.first_federal + np.arange(len(self.view.federal_session))

    def price(self, prices: FederalPrices, time_limit: float, gap: float) -> Pricing:
        """The region at federal prices: its proved bound (within `gap`) and its plan as columns."""
        region = self.view.region
        cost = np.zeros(self.activity_offset + len(region.program_sessions))
        sessions = self.view.federal_session
        cost[self._federal_activities()] = (self.price_rub / self.params.rub_per_point + prices.seat[sessions]
                                            + (prices.budget + prices.quota[self.index]) * self.price_rub)
        return self._solve(region, cost, time_limit, max(self.params.gap_limit, gap), self._start)

    def allot(self, allotment: "Allotment", time_limit: float) -> Pricing:
        """The region re-solved within its allotment: each federal session's seats are those its column (its
        plan in the master's best national plan) uses, plus the extra seats given to it, so whatever plan
        it finds spends at most the money of those seats; federal sessions cost only their price, and the
        column is the start."""
        from dataclasses import replace

        column = allotment.column
        region = self.view.region
        ps = region.program_sessions
        used = (column.sessions[None, :] == self.view.federal_session[:, None]).sum(axis=1)
        seats = ps.seats.copy()
        seats[self.view.first_federal:] = used + allotment.extra[self.view.federal_session]
        allotted = replace(region, program_sessions=replace(ps, seats=seats))
        cost = np.zeros(self.activity_offset + len(ps))
        cost[self._federal_activities()] = self.price_rub / self.params.rub_per_point
        pricing = self._solve(allotted, cost, time_limit, max(self.params.gap_limit, allotment.gap),
                              self._refs(column))
        if pricing.columns[0].value < column.value:  # the solve starts from the column; never worse
            pricing.columns = [column]
        else:
            pricing.columns = pricing.columns[:1]
        return pricing

    def _solve(self, region: RegionData, cost: np.ndarray, time_limit: float, gap: float,
               start: list | None) -> Pricing:
        from .solver import solve

        started = time.perf_counter()
        params = self.params.model_copy(update={"time_limit_s": max(0.5, time_limit), "gap_limit": gap})
        result = solve(region, params, activity_price=cost, start=start, prices=self._duals)
        inst = result.instance
        chosen = result.chosen
        columns = [self._column(inst, chosen)]
        first = self.activity_offset + self.view.first_federal
        droppable = chosen & (inst.options.activity >= first) & ~inst.options.pinned
        if droppable.any():
            # The plan without its federal assignments, and without those of one federal session at a time:
            # (still plans of the region: dropping an assignment breaks no rule) the master then trades
            # each session's seats separately, and its prices settle in fewer rounds.
            columns.append(self._column(inst, chosen & ~droppable))
            used = np.unique(inst.options.activity[droppable])
            if len(used) > 1:
                columns.extend(self._column(inst, chosen & ~(droppable & (inst.options.activity == a)))
                               for a in used)
        if result.prices is not None:
            self._duals = result.prices
        self._start = self._refs(columns[0])
        bound, priced = float(result.statistics["priced_bound"]), inst.solver_objective(chosen)
        status = "OPTIMAL" if bound - priced <= OPTIMAL_TOLERANCE * max(1.0, abs(bound)) else "FEASIBLE"
        return Pricing(self.index, bound, columns, status, time.perf_counter() - started, priced)

    def _refs(self, column: "Column") -> list:
        """A column's assignments as AssignmentRefs of the region (a start plan for its solve); the
        solver's activities are the region's mentors, site sessions and program sessions in order."""
        from .params import KINDS, AssignmentRef

        region = self.view.region
        ids = region.mentors.ids + region.site_sessions.ids + region.program_sessions.ids
        kinds = np.repeat([0, 1, 2], [len(region.mentors), len(region.site_sessions), len(region.program_sessions)])
        return [AssignmentRef(teacher_id=region.teachers.ids[t], kind=KINDS[kinds[a]], resource_id=ids[a])
                for t, a in zip(column.teacher.tolist(), column.activity.tolist())]

    def _column(self, inst, chosen: np.ndarray) -> Column:
        idx = np.flatnonzero(chosen)
        teacher, activity = inst.options.teacher[idx], inst.options.activity[idx]
        k = activity - self.activity_offset - self.view.first_federal
        federal = k >= 0
        sessions = self.view.federal_session[k[federal]]
        spend = int(self.price_rub[k[federal]].sum())
        value = inst.objective(chosen) - spend / self.params.rub_per_point
        return Column(self.index, teacher.astype(np.int64), activity.astype(np.int64), value, sessions, spend)


def _federal_for(federal, index: int):
    """The federal layer as a one-region nation sees it: region `index` becomes region 0."""
    from dataclasses import replace

    region = np.where(federal.session_region == index, 0, np.where(federal.session_region == -1, -1, 1))
    return replace(federal, session_region=region, quota_rub=federal.quota_rub[index:index + 1])


@dataclass
class NationProgress:
    elapsed: float
    round: int
    objective: float | None
    bound: float | None
    phase: str
    region_id: str | None = None


@dataclass
class NationResult:
    status: str
    objective: float
    bound: float
    solve_seconds: float
    columns: list[Column]  # the plan: one column per region, in region order
    rounds: list[dict] = field(default_factory=list)
    history: list[NationProgress] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return max(0.0, relative_gap(self.objective, self.bound))


class PricingBackend:
    """Prices every region at given prices; in this process (here) or on Ray (engine.nation_ray)."""

    def price_all(self, prices: FederalPrices, time_limit: float, gap: float) -> list[Pricing]:
        raise NotImplementedError

    def allot_all(self, allotments: list[Allotment], time_limit: float) -> list[Pricing]:
        """Every region re-solved within its allotment (RegionPricer.allot), one a region in region order."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalBackend(PricingBackend):
    def __init__(self, nation: NationData, params: NationParams) -> None:
        self.pricers = [RegionPricer(nation.federal, region, r, rid, params.for_region(rid))
                        for r, (rid, region) in enumerate(zip(nation.region_ids, nation.regions))]

    def price_all(self, prices: FederalPrices, time_limit: float, gap: float) -> list[Pricing]:
        return price_in_turn(self.pricers, prices, time_limit, gap=gap)

    def allot_all(self, allotments: list[Allotment], time_limit: float) -> list[Pricing]:
        return price_in_turn(self.pricers, None, time_limit, dict(enumerate(allotments)))


def price_in_turn(pricers: list[RegionPricer], prices: FederalPrices | None, time_limit: float,
                  allotments: dict[int, Allotment] | None = None, gap: float = 0.0) -> list[Pricing]:
    """Prices regions one after another within `time_limit`: smallest first, each given the time left in
    proportion to its teachers (a pricing at most its `time_cap`), so what a quickly proved region leaves
    goes to the larger ones. With `allotments` (region index -> its Allotment), each
    region is re-solved within its allotment instead."""
    deadline = time.perf_counter() + time_limit
    order = sorted(pricers, key=lambda p: p.size)
    left = sum(p.size for p in order)
    out = []
    for p in order:
        share = (deadline - time.perf_counter()) * p.size / max(1, left)
        if allotments is None:
            out.append(p.price(prices, min(share, p.time_cap()), gap))
        else:
            out.append(p.allot(allotments[p.index], share))
        left -= p.size
    return out


class Master:
    """The regions' plans as columns, the federal rows as constraints."""

    def __init__(self, nation: NationData) -> None:
        fed = nation.federal
        self.n_regions, self.n_sessions = len(nation.regions), len(fed.session_ids)
        self.seats = fed.seats.astype(float)
        self.budget = float(fed.budget_rub)
        self.quota = fed.quota_rub.astype(float)
        self.quota_rows = np.flatnonzero(self.quota >= 0)
        self.price_rub = fed.session_price.astype(np.int64)
        self.columns: list[Column] = []
        self._keys: set = set()

    def add(self, column: Column) -> None:
        key = column.key()
        if key not in self._keys:
            self._keys.add(key)
            self.columns.append(column)

    def _rows(self):
        """Constraint matrix: one row per region (= 1), per session seat (<=), budget, quotas (<=)."""
        n = len(self.columns)
        rows, cols, vals = [], [], []
        n_conv = self.n_regions
        for j, c in enumerate(self.columns):
            rows.append(c.region)
            cols.append(j)
            vals.append(1.0)
            sessions, counts = np.unique(c.sessions, return_counts=True)
            rows.extend((n_conv + sessions).tolist())
            cols.extend([j] * len(sessions))
            vals.extend(counts.astype(float).tolist())
            if c.spend_rub:
                rows.append(n_conv + self.n_sessions)
                cols.append(j)
                vals.append(float(c.spend_rub))
                q = np.searchsorted(self.quota_rows, c.region)
                if q < len(self.quota_rows) and self.quota_rows[q] == c.region:
                    rows.append(n_conv + self.n_sessions + 1 + q)
                    cols.append(j)
                    vals.append(float(c.spend_rub))
        shape = (n_conv + self.n_sessions + 1 + len(self.quota_rows), n)
        matrix = csr_matrix((vals, (rows, cols)), shape=shape)
        upper = np.r_[np.ones(n_conv), self.seats, self.budget, self.quota[self.quota_rows]]
        lower = np.r_[np.ones(n_conv), np.full(shape[0] - n_conv, -np.inf)]
        return matrix, lower, upper

    def lp_prices(self) -> tuple[float, FederalPrices]:
        """The master LP's value and its duals on the federal rows (the next prices)."""
        matrix, lower, upper = self._rows()
        n_conv = self.n_regions
        value = np.array([c.value for c in self.columns])
        result = linprog(-value, A_ub=matrix[n_conv:], b_ub=upper[n_conv:], A_eq=matrix[:n_conv],
                         b_eq=np.ones(n_conv), bounds=(0, None), method="highs")
        if result.status != 0:
            raise RuntimeError(f"national master LP: {result.message}")
        duals = -np.asarray(result.ineqlin.marginals)  # >= 0 for <= rows of a maximisation
        duals = np.maximum(duals, 0.0)
        quota = np.zeros(self.n_regions)
        quota[self.quota_rows] = duals[self.n_sessions + 1:]
        return -float(result.fun), FederalPrices(duals[:self.n_sessions], float(duals[self.n_sessions]), quota)

    def integer_plan(self, time_limit: float) -> list[Column] | None:
        """One plan per region within the federal rows, best total value (HiGHS' MIP)."""
        matrix, lower, upper = self._rows()
        value = np.array([c.value for c in self.columns])
        result = milp(-value, constraints=LinearConstraint(matrix, lower, upper),
                      integrality=np.ones(len(value)), bounds=Bounds(0, 1),
                      options={"time_limit": max(0.5, time_limit), "disp": False})
        if result.x is None:
            return None
        picked = np.flatnonzero(result.x > 0.5)
        by_region = {self.columns[j].region: self.columns[j] for j in picked}
        if len(by_region) != self.n_regions:
            return None
        plan = [by_region[r] for r in range(self.n_regions)]
        return plan if self.fits(plan) else None

    def allotments(self, plan: Sequence[Column], wishes: Sequence[Column], gap: float = 0.0) -> list[Allotment]:
        """Each region's column of `plan` and extra seats out of what `plan` leaves of each session: a
        region gets the seats its wish (its plan at the last prices, federal rows unpriced beyond them)
        uses beyond its column, cheapest sessions first, while the federal budget and its quota could pay
        for every seat allotted: whatever each region then takes, the federal rows hold exactly."""
        used = np.zeros((self.n_regions, self.n_sessions), dtype=np.int64)
        wanted = np.zeros((self.n_regions, self.n_sessions), dtype=np.int64)
        for c in plan:
            used[c.region] = np.bincount(c.sessions.astype(np.int64), minlength=self.n_sessions)
        for c in wishes:
            wanted[c.region] = np.bincount(c.sessions.astype(np.int64), minlength=self.n_sessions)
        seats_left = self.seats.astype(np.int64) - used.sum(axis=0)
        money_left = int(self.budget) - sum(c.spend_rub for c in plan)
        quota_left = np.where(self.quota >= 0, self.quota - np.array([c.spend_rub for c in plan]), np.inf)
        extra = np.zeros_like(used)
        for s in np.argsort(self.price_rub, kind="stable"):
            for r in np.flatnonzero(wanted[:, s] > used[:, s]):
                cost = int(self.price_rub[s])
                affordable = min(money_left, quota_left[r]) // cost if cost else seats_left[s]
                k = int(min(wanted[r, s] - used[r, s], seats_left[s], affordable))
                if k > 0:
                    extra[r, s] += k
                    seats_left[s] -= k
                    money_left -= k * cost
                    quota_left[r] -= k * cost
        return [Allotment(c, extra[c.region], gap) for c in plan]

    def fits(self, plan: Sequence[Column]) -> bool:
        """The federal rows, checked exactly in integers (the MIP works within tolerances)."""
        used = np.bincount(np.concatenate([c.sessions for c in plan]).astype(np.int64), minlength=self.n_sessions) \
            if plan else np.zeros(self.n_sessions)
        spend = sum(c.spend_rub for c in plan)
        quotas_ok = all(self.quota[c.region] < 0 or c.spend_rub <= self.quota[c.region] for c in plan)
        return bool((used <= self.seats).all() and spend <= self.budget and quotas_ok)


def _stalled(rounds: list[dict]) -> bool:
    if len(rounds) <= STALL_ROUNDS:
        return False
    then, now = rounds[-1 - STALL_ROUNDS], rounds[-1]
    scale = max(1.0, abs(now["best_bound"]))
    return (then["best_bound"] - now["best_bound"] <= STALL_TOLERANCE * scale
            and now["best_objective"] - then["best_objective"] <= STALL_TOLERANCE * scale)


def lagrangian_bound(pricings: list[Pricing], prices: FederalPrices, master: Master) -> float:
    quota = master.quota.copy()
    return (sum(p.bound for p in pricings) + float(prices.seat @ master.seats) + prices.budget * master.budget
            + float(prices.quota[master.quota_rows] @ quota[master.quota_rows]))


def subgradient_prices(prices: FederalPrices, pricings: list[Pricing], master: Master, bound: float,
                       target: float, step: float) -> FederalPrices:
    """A Polyak step on the rows scaled to `usage / limit <= 1`: price += t * (usage / limit - 1)."""
    plans = [p.columns[0] for p in pricings]  # each region's plan at these prices
    used = np.bincount(np.concatenate([c.sessions for c in plans]).astype(np.int64), minlength=master.n_sessions)
    spend = np.array([c.spend_rub for c in plans], dtype=float)
    by_region = np.bincount([c.region for c in plans], weights=spend, minlength=master.n_regions)
    seat_limit = np.maximum(1.0, master.seats)
    budget_limit = max(1.0, master.budget)
    quota_limit = np.maximum(1.0, master.quota)
    rows = master.quota_rows
    g_seat = used / seat_limit - 1
    g_budget = spend.sum() / budget_limit - 1
    g_quota = by_region[rows] / quota_limit[rows] - 1
    norm = float(g_seat @ g_seat + g_budget ** 2 + g_quota @ g_quota)
    if norm <= 0:
        return prices
    t = step * max(0.0, bound - target) / norm
    quota = prices.quota.copy()
    quota[rows] = np.maximum(0.0, quota[rows] * quota_limit[rows] + t * g_quota) / quota_limit[rows]
    return FederalPrices(np.maximum(0.0, prices.seat * seat_limit + t * g_seat) / seat_limit,
                         max(0.0, prices.budget * budget_limit + t * g_budget) / budget_limit, quota)


def solve_nation(nation: NationData, params: NationParams, backend: PricingBackend | None = None,
                 on_progress: Callable[[NationProgress], None] | None = None,
                 time_limit_s: float | None = None, method: str = "dw", max_rounds: int | None = None) -> NationResult:
    """Plans the nation; `time_limit_s` (default: the parameters') covers pricing and masters; at most
    `max_rounds` pricing rounds (default: as many as the time allows) before the allotment round."""
    started = time.perf_counter()
    limit = params.params.time_limit_s if time_limit_s is None else time_limit_s
    deadline = started + limit
    backend = backend or LocalBackend(nation, params)
    master = Master(nation)
    history: list[NationProgress] = []
    best_plan: list[Column] | None = None
    best_value, best_bound = -np.inf, np.inf
    center = FederalPrices.zero(master.n_sessions, master.n_regions)
    prices = center
    smoothing = SMOOTHING
    rounds: list[dict] = []
    step = 1.0
    gap_limit = max(OPTIMAL_TOLERANCE, params.params.gap_limit)

    def report(phase: str, region_id: str | None = None) -> None:
        event = NationProgress(time.perf_counter() - started, len(rounds),
                               None if best_plan is None else best_value,
                               None if not np.isfinite(best_bound) else best_bound, phase, region_id)
        history.append(event)
        if on_progress:
            on_progress(event)

    longest_round = 0.0
    final_mip = min(MASTER_MIP_FINAL_SECONDS, MASTER_MIP_FINAL_SHARE * limit)
    while True:
        round_started = time.perf_counter()
        # The allotment round's time is kept back (it is what makes the plan; see below).
        reserve = final_mip + max(ALLOTMENT_MIN_SHARE * limit, ALLOTMENT_ROUNDS * longest_round)
        national_gap = relative_gap(best_value, best_bound) if best_plan is not None else np.inf
        pricing_gap = float(np.clip(PRICING_GAP_SHARE * national_gap, gap_limit, PRICING_GAP_MAX))
        pricings = backend.price_all(prices, max(0.5, deadline - reserve - time.perf_counter()), pricing_gap)
        for p in sorted(pricings, key=lambda p: p.region):
            for column in p.columns:
                master.add(column)
            report(f"region priced ({p.status})", nation.region_ids[p.region])
        priced = time.perf_counter()
        bound = lagrangian_bound(pricings, prices, master)
        if bound < best_bound:
            best_bound, center, smoothing = bound, prices, SMOOTHING
        else:
            smoothing += SMOOTHING_BACKOFF * (1 - smoothing)
        plan = master.integer_plan(min(MASTER_MIP_SECONDS, max(0.5, 0.3 * (deadline - time.perf_counter()))))
        if plan is not None:
            value = sum(c.value for c in plan)
            if value > best_value:
                best_plan, best_value = plan, value
        lp_value, duals = master.lp_prices()
        longest_round = max(longest_round, time.perf_counter() - round_started)
        rounds.append({"round": len(rounds) + 1, "bound": float(bound), "best_bound": float(best_bound),
                       "master_lp": lp_value, "best_objective": best_value, "columns": len(master.columns),
                       "pricing_gap": pricing_gap, "pricing_seconds": round(priced - round_started, 3),
                       "regions_unproved": float(sum(p.bound - p.value for p in pricings)),
                       "region_seconds": round(sum(p.seconds for p in pricings), 3),
                       "master_seconds": round(time.perf_counter() - priced, 3),
                       "seconds": round(time.perf_counter() - started, 3)})
        report("round")
        if best_plan is not None and relative_gap(best_value, best_bound) <= gap_limit:
            break
        # A round is not cut short (each region gets its minimum), so none starts without the time of the last,
        # and the allotment round keeps its own.
        reserve = final_mip + max(ALLOTMENT_MIN_SHARE * limit, ALLOTMENT_ROUNDS * longest_round)
        if deadline - reserve - time.perf_counter() < max(1.0, 0.9 * longest_round) or _stalled(rounds) \
                or len(rounds) == max_rounds:
            break
        if method == "subgradient":
            if len(rounds) >= 3 and rounds[-1]["best_bound"] >= rounds[-3]["best_bound"]:
                step = max(0.05, step / 2)
            prices = subgradient_prices(prices, pricings, master, bound, best_value, step)
        else:
            prices = center.blend(duals, smoothing) if len(rounds) > 1 else duals
    # The allotment round: each region gets the federal seats (hence at most the money) its plan in the best
    # national plan uses, and is solved within them at true costs from that plan: the national plan stays
    # within every federal row exactly, and each region gets a full optimisation of its own.
    if best_plan is not None and relative_gap(best_value, best_bound) > gap_limit:
        plan = master.integer_plan(max(0.5, min(final_mip, deadline - time.perf_counter())))
        if plan is not None and sum(c.value for c in plan) > best_value:
            best_plan, best_value = plan, sum(c.value for c in plan)
        mip_value = best_value
        wishes = [p.columns[0] for p in sorted(pricings, key=lambda p: p.region)]
        allotment_gap = ALLOTMENT_GAP_SHARE * relative_gap(best_value, best_bound)
        allotted = sorted(backend.allot_all(master.allotments(best_plan, wishes, allotment_gap),
                                            max(0.5, deadline - time.perf_counter())), key=lambda p: p.region)
        for p in allotted:
            report(f"region allotted ({p.status})", nation.region_ids[p.region])
        plan = [p.columns[0] for p in allotted]
        value = sum(c.value for c in plan)
        if master.fits(plan) and value > best_value:
            best_plan, best_value = plan, value
        rounds.append({"round": len(rounds) + 1, "allotment": True, "best_bound": float(best_bound),
                       "master_mip": mip_value, "best_objective": best_value,
                       "seconds": round(time.perf_counter() - started, 3)})
        report("allotment")
    if best_plan is None:
        raise InputError([Problem("params", "закреплённые федеральные назначения вместе превышают места или "
                                            "федеральный бюджет", "pinned_breaks_rule")],
                         title="Ошибки в закреплённых назначениях")
    best_bound = max(best_bound, best_value)
    gap = relative_gap(best_value, best_bound)
    status = "OPTIMAL" if gap <= OPTIMAL_TOLERANCE else "FEASIBLE"
    report("done")
    return NationResult(status, best_value, best_bound, time.perf_counter() - started, best_plan, rounds, history)
