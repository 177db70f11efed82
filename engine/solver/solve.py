"""solve(region, params) -> Result: greedy, decomposition (bound and routes), rounding, exact search.

1. A greedy start by marginal gain.
2. Dantzig-Wolfe decomposition (engine.solver.decompose): capacities and budgets are the only rules
   that tie teachers together; priced, the problem splits into one small problem per teacher, solved
   exactly over all her options (engine.solver.routes). That gives the proved bound (Lagrangian
   duality) and routes for a master LP over routes.
3. Plans from the master: its solution rounded (routes taken whole, the rest priced again), then
   HiGHS' MIP over its routes: all of them where the master is small, else a group of teachers at a
   time (Decomposition.improve_plan).
4. Small instances: the LP over options for reduced-cost fixing, then one MIP of all live options,
   which usually proves optimality.
5. Large-neighbourhood search with the time left: an exact sub-solver re-optimises a group of
   teachers (a municipality and its neighbours, the users of a saturated activity and those who
   wanted it, or a deficit profile) with everyone else fixed; HiGHS' MIP by default, or OR-Tools
   CP-SAT warm-started from the incumbent (`subsolver`).

The bound is the best of the decomposition's, the LP's and the exact solver's where it solved the
whole model: always a proof.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..params import Params
from ..problems import InputError, Problem
from ..region import RegionData
from ..rules import PlanArrays, violations
from .bound import lp_bound, relative_gap
from .decompose import Decomposition, Duals
from .routes import warm_up
from .greedy import Residuals, greedy
from .instance import Instance
from .mip import MIP_REL_GAP, MipResult, solve_mip

# Up to this many live options one MIP of everything is tried first; past it, neighbourhoods only.
FULL_MODEL_OPTIONS = 40_000
# Up to this many options the LP over options is solved too, for reduced-cost fixing before that MIP.
LP_FIXING_OPTIONS = 200_000
DECOMPOSITION_SHARE = 0.92  # of the time left after the greedy start
MASTER_MIP_SHARE = 0.5  # of the time left after the decomposition
MASTER_MIP_SECONDS = 30.0
# HiGHS' MIP over more routes than this can overrun its time limit in presolve (measured: 269 s asked
# for 10 s at 185,000 routes, and 24 s asked for about 10 s at 38,000 routes on altai-krai on a loaded
# machine); there the rounded master stands alone.
MASTER_MIP_COLUMNS = 15_000
# Past it, Decomposition.improve_plan's MIPs over a group's routes at a time, in this share of the time left
# after the rounding (the rest goes to the neighbourhoods).
ROUTE_MIP_SHARE = 0.7
OPTIMAL_TOLERANCE = 1e-6  # relative gap under which a plan is reported as proved optimal


@dataclass(frozen=True)
class Progress:
    elapsed: float
    objective: float
    bound: float | None
    phase: str


@dataclass
class Result:
    instance: Instance
    chosen: np.ndarray  # bool over options
    status: str  # OPTIMAL | FEASIBLE
    objective: float
    bound: float
    solve_seconds: float
    statistics: dict = field(default_factory=dict)
    history: list[Progress] = field(default_factory=list)
    # The shared rows' prices of the best bound (points per seat and per rouble): a neighbouring
    # solve (a sweep's next point) starts from them, and they price a rouble of budget.
    prices: Duals | None = None

    @property
    def gap(self) -> float:
        return max(0.0, relative_gap(self.objective, self.bound))

    @property
    def plan(self) -> PlanArrays:
        """The plan over the region's activities (`activities`): pooled ones split back."""
        return self.instance.real_plan(self.chosen)

    @property
    def activities(self):
        """The region's activities, which `plan` indexes."""
        return self.instance.real_activities


class _Tracker:
    def __init__(self, started: float, callback: Callable[[Progress], None] | None) -> None:
        self.started, self.callback = started, callback
        self.history: list[Progress] = []
        self.objective, self.bound = float("-inf"), float("inf")

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def update(self, phase: str, objective: float | None = None, bound: float | None = None) -> None:
        if objective is not None:
            self.objective = max(self.objective, objective)
        if bound is not None:
            self.bound = min(self.bound, bound)
        event = Progress(self.elapsed(), self.objective, None if np.isinf(self.bound) else self.bound, phase)
        self.history.append(event)
        if self.callback:
            self.callback(event)


def solve(region: RegionData, params: Params, on_progress: Callable[[Progress], None] | None = None,
          profiles: np.ndarray | None = None, should_stop: Callable[[], bool] | None = None,
          keep: list | None = None, keep_bonus: float = 0.0, start: list | None = None,
          prices: Duals | None = None, activity_price: np.ndarray | None = None) -> Result:
    """Plans the region. Raises InputError only for pinned assignments that break the rules.

    `keep` (AssignmentRef list, e.g. a previous plan) earns `keep_bonus` points per kept
    assignment: re-planning moves an assignment only where that gains more than the bonus.
    `start` (AssignmentRef list) is a plan to start from, e.g. a neighbouring sweep point's: used
    when it obeys every rule here, else ignored; `prices` (a neighbour's Result.prices) are priced
    first, which gives a bound and routes before the first master LP.
    `activity_price` (points per region activity, >= 0) is charged on top of SPEC's cost: the solver
    then maximises objective - price, and `statistics["priced_bound"]` is a proved bound on that.
    """
    warm_up()  # a one-time compilation after installation is not the solve's time
    started = time.perf_counter()
    deadline = started + params.time_limit_s
    tracker = _Tracker(started, on_progress)
    # A nation's prices index the region's activities (and its code reads the solver's options in
    # those terms): priced solves go without pools.
    # Options worth nothing alone are left out only without a floor for the left-out: under a floor
    # such an option can be what reaches a teacher of the group (engine.solver.floor).
    inst = Instance.build(region, params, keep=keep, keep_bonus=keep_bonus, pool=activity_price is None,
                          worthwhile=not params.min_reached_share.active(), activity_price=activity_price)
    _check_pinned_jointly(inst)
    stats: dict = {"options": inst.n_options, "teachers": len(region.teachers),
                   "pooled_activities": inst.pools.n_pooled if inst.pools else 0,
                   "options_seconds": round(tracker.elapsed(), 3)}

    chosen = greedy(inst, _start_plan(inst, start))
    objective = inst.solver_objective(chosen)
    stats.update(greedy_objective=objective, greedy_seconds=round(tracker.elapsed(), 3))
    tracker.update("greedy", objective)

    # The decomposition: a proved bound from each teacher's exact best route at the shared rows' prices,
    # and routes as columns for a plan (engine.solver.decompose).
    decomposition = Decomposition(inst)
    if prices is not None and not (prices.capacity.shape == (len(inst.activities),)
                                   and prices.municipal.shape == (len(region.municipalities),)):
        prices = None  # another region's (or pooling's) prices: not these rows'
    remaining = deadline - time.perf_counter()
    rounds = decomposition.run(chosen, time_limit=DECOMPOSITION_SHARE * remaining,
                               on_round=lambda _: tracker.update("decomposition", None,
                                                                 decomposition.best_bound),
                               should_stop=should_stop, gap_limit=params.gap_limit, prices=prices)
    bound = decomposition.best_bound
    stats.update(decomposition_rounds=len(rounds), decomposition_columns=decomposition.n_columns,
                 decomposition_master=rounds[-1].master if rounds else decomposition.final_master,
                 decomposition_seconds=round(rounds[-1].seconds, 3) if rounds else 0.0,
                 decomposition_inexact_teachers=rounds[-1].inexact if rounds else None)
    # Plans from the routes: the master's solution rounded (routes taken whole, most certain first,
    # the rest priced again at the master's prices), and where the master is small, a MIP over its routes.
    if decomposition.last_duals is not None and not _settled(objective, bound, params):
        remaining = deadline - time.perf_counter()
        plan = greedy(inst, decomposition.priced_plan(decomposition.last_duals, max(0.5, 0.25 * remaining)))
        stats["rounded_master_objective"] = inst.solver_objective(plan)
        if inst.solver_objective(plan) > objective:
            chosen, objective = plan, inst.solver_objective(plan)
            tracker.update("rounded master", objective, bound)
    remaining = deadline - time.perf_counter()
    whole = decomposition.n_columns <= MASTER_MIP_COLUMNS  # else too many routes for one MIP
    if rounds and remaining > (0.5 if whole else 1.0) and not _settled(objective, bound, params):
        with _ticking(tracker, "routes mip"):
            plan = decomposition.integer_plan(min(MASTER_MIP_SECONDS, MASTER_MIP_SHARE * remaining)) if whole \
                else decomposition.improve_plan(chosen, ROUTE_MIP_SHARE * remaining)  # group by group
        if plan is not None:
            plan = greedy(inst, _repaired(inst, plan))
            if whole:
                stats["master_mip_objective"] = inst.solver_objective(plan)
            else:
                stats.update(decomposition.improve_stats, route_mip_objective=inst.solver_objective(plan))
            if inst.solver_objective(plan) > objective:
                chosen, objective = plan, inst.solver_objective(plan)
                tracker.update("routes mip", objective, bound)

    # Small problems: the LP over options, for reduced-cost fixing before one MIP of everything.
    fixing = np.zeros(inst.n_options)
    remaining = deadline - time.perf_counter()
    if inst.n_options <= LP_FIXING_OPTIONS and remaining > 0.5 and not _settled(objective, bound, params):
        bound_result = lp_bound(inst, chosen, time_limit=max(0.5, 0.35 * remaining))
        stats.update(lp_objective=bound_result.lp_objective, lp_rounds=bound_result.iterations,
                     lp_master=bound_result.master_size, lp_seconds=round(bound_result.seconds, 3))
        if bound_result.bound < bound:
            bound = bound_result.bound
        else:  # the LP's fixing values are measured from its own bound
            bound_result.fixing += bound_result.bound - bound
        fixing = bound_result.fixing
        tracker.update("bound", objective, bound)

    alive = _live_options(inst, bound, fixing, objective, chosen)
    stats["live_options"] = int(alive.sum())
    if alive.sum() <= FULL_MODEL_OPTIONS and not _settled(objective, bound, params):
        chosen, bound = _full_model(inst, alive, chosen, objective, bound, deadline, tracker, stats)
    if deadline - time.perf_counter() > 0.3 and not (should_stop and should_stop()) \
            and not _settled(inst.solver_objective(chosen), bound, params):
        chosen = _neighbourhoods(inst, alive, chosen, bound, deadline, tracker, stats, profiles, should_stop)

    # Neighbourhoods leave some teachers untouched when time runs out: a last greedy pass only adds.
    topped = greedy(inst, chosen)
    if inst.solver_objective(topped) > inst.solver_objective(chosen) + 1e-9:
        stats["top_up_gain"] = inst.solver_objective(topped) - inst.solver_objective(chosen)
        chosen = topped
    stats["priced_bound"] = max(bound, inst.solver_objective(chosen))  # on what the solver maximised
    objective = inst.objective(chosen)
    bound = max(bound, objective)  # the bound is proved >= any feasible objective; guards rounding
    broken = violations(region, params, inst.real_activities, inst.real_plan(chosen))
    if broken:  # a bug, never the user's fault: do not hand out a plan that breaks a rule
        raise RuntimeError("plan breaks rules: " + "; ".join(broken[:5]))
    status = "OPTIMAL" if _proved(objective, bound) else "FEASIBLE"
    tracker.update("done", objective, bound)
    return Result(inst, chosen, status, objective, bound, tracker.elapsed(), stats, tracker.history,
                  decomposition.best_duals)


def _start_plan(inst: Instance, start: list | None) -> np.ndarray:
    """The pinned options plus those of `start`, when together they obey every rule; else the pinned.
    `start` names the region's sessions and mentors: those in a pool are found as the pool."""
    chosen = inst.options.pinned.copy()
    if start and inst.pools is not None:
        pooled = inst.pools.solver_ids(inst.activities)
        start = [ref.model_copy(update={"resource_id": pooled.get(ref.resource_id, ref.resource_id)}) for ref in start]
    if start:
        candidate = chosen.copy()
        candidate[inst.options.find(inst.region, inst.activities, start)] = True
        if not violations(inst.region, inst.params, inst.activities,
                          PlanArrays(inst.options.teacher[candidate], inst.options.activity[candidate])):
            chosen = candidate
    return chosen


@contextmanager
def _ticking(tracker: _Tracker, phase: str, every: float = 1.0):
    """A long HiGHS call reports nothing by itself: tell the user every second that it is working."""
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            tracker.update(phase)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _repaired(inst: Instance, chosen: np.ndarray) -> np.ndarray:
    """`chosen` less the fewest low-value routes that keep seats and budgets within their limits.

    The MIP over routes keeps them within HiGHS' tolerances; roubles are whole, so this rarely drops
    anything, but a plan must obey the rules exactly."""
    chosen = chosen.copy()
    residuals = Residuals(inst, chosen)
    if not residuals.overdrawn():
        return chosen
    over_capacity = np.flatnonzero(residuals.capacity < 0)
    over_budget = np.flatnonzero(residuals.municipal < 0)
    values = inst.teacher_values(chosen)
    opts = inst.options
    suspects = chosen & (np.isin(opts.activity, over_capacity) | (np.isin(inst.municipality, over_budget)
                                                                    & (inst.budget_rub > 0))
                         | ((inst.budget_rub > 0) & (residuals.region < 0)))
    suspected = np.unique(opts.teacher[suspects])
    for teacher in suspected[np.argsort(values[suspected])]:
        if not Residuals(inst, chosen).overdrawn():
            break
        mine = slice(opts.first[teacher], opts.first[teacher + 1])
        chosen[mine] &= opts.pinned[mine]
    return chosen


def _proved(objective: float, bound: float, tolerance: float = OPTIMAL_TOLERANCE) -> bool:
    return relative_gap(objective, bound) <= tolerance


def _settled(objective: float, bound: float, params: Params) -> bool:
    """Proved within the planner's `gap_limit`: no phase starts after that."""
    return _proved(objective, bound, max(OPTIMAL_TOLERANCE, params.gap_limit))


def _check_pinned_jointly(inst: Instance) -> None:
    pinned = inst.options.pinned
    if not pinned.any():
        return
    broken = violations(inst.region, inst.params.model_copy(update={"pinned": [], "forbidden": []}),
                        inst.activities, PlanArrays(inst.options.teacher[pinned], inst.options.activity[pinned]))
    if broken:
        raise InputError([Problem("pinned", f"закреплённые назначения вместе нарушают правила: {b}",
                                  "pinned_breaks_rule") for b in broken],
                         title="Ошибки в закреплённых назначениях")


def _exact(inst: Instance, candidates: np.ndarray, chosen: np.ndarray, time_limit: float,
           full: bool = False) -> MipResult:
    """The exact sub-solver chosen by `params.subsolver` over the teachers of `candidates`."""
    # Only the whole model's solve may stop at the planner's `gap_limit`: its bound is the plan's.
    rel_gap = inst.params.gap_limit if full else MIP_REL_GAP
    if inst.params.subsolver == "highs":
        return solve_mip(inst, candidates, chosen, time_limit, rel_gap=rel_gap)
    from .cpsat import solve_teachers  # OR-Tools, imported only when asked for

    sub = solve_teachers(inst, candidates, chosen, time_limit, workers=inst.params.workers,
                         seed=inst.params.seed, full=full, rel_gap=rel_gap if full else 0.0)
    # CP-SAT's bound concerns the candidates' teachers; it bounds the whole problem only when
    # they are everyone, which is what `full` means.
    return MipResult(sub.chosen, sub.improved, sub.status, sub.model_bound if full else None, sub.seconds)


def _live_options(inst: Instance, bound: float, fixing: np.ndarray, incumbent: float,
                  chosen: np.ndarray) -> np.ndarray:
    """Reduced-cost fixing: an option whose forcing would bring the bound below the incumbent is in
    no better plan."""
    slack = 1e-7 * max(1.0, abs(bound))
    return (bound + np.minimum(fixing, 0.0) >= incumbent - slack) | chosen | inst.options.pinned


def _full_model(inst, alive, chosen, incumbent, bound, deadline, tracker, stats):
    """One MIP of every live option. Its dual bound is valid for the whole problem: any plan better
    than the incumbent uses live options only (reduced-cost fixing)."""
    candidates = np.flatnonzero(alive)
    remaining = deadline - time.perf_counter()
    if len(candidates) == 0 or remaining <= 0.1:
        return chosen, bound
    with _ticking(tracker, "mip"):
        sub = _exact(inst, candidates, chosen, remaining, full=True)
    stats.update(method="mip full model", mip_status=sub.status, mip_seconds=round(sub.seconds, 3))
    new = chosen.copy()
    new[candidates] = sub.chosen
    if sub.dual_bound is not None:
        # HiGHS' floating-point bound, widened by its own gap tolerance.
        proved = sub.dual_bound + 2 * MIP_REL_GAP * max(1.0, abs(sub.dual_bound))
        bound = min(bound, max(incumbent, proved))
    tracker.update("mip", inst.solver_objective(new), bound)
    return new, bound


def _neighbourhoods(inst, alive, chosen, bound, deadline, tracker, stats, profiles, should_stop):
    rng = np.random.default_rng(inst.params.seed)
    opts = inst.options
    n_teachers = len(inst.need)
    live_first = np.searchsorted(opts.teacher[alive], np.arange(n_teachers + 1))
    live_count = np.diff(live_first)
    municipality = inst.region.teacher_municipality
    travel = inst.region.travel_minutes
    target = 6000  # live options per neighbourhood; adapted to how the solves go
    moves = improvements = 0
    kinds = ["municipality", "activity", "profile" if profiles is not None else "random", "random"]
    objective = inst.solver_objective(chosen)
    while True:
        remaining = deadline - time.perf_counter()
        if remaining < 0.3 or (should_stop and should_stop()) or _settled(objective, bound, inst.params):
            break
        kind = kinds[moves % len(kinds)]
        teachers = _pick(kind, rng, inst, chosen, alive, live_count, municipality, travel, profiles, target)
        if len(teachers) == 0:
            moves += 1
            continue
        mask = alive & np.isin(opts.teacher, teachers)
        candidates = np.flatnonzero(mask | (chosen & np.isin(opts.teacher, teachers)))
        if len(candidates) == 0:  # teachers with no live option: nothing to re-optimise
            moves += 1
            continue
        sub = _exact(inst, candidates, chosen, min(remaining, 5.0))
        moves += 1
        if sub.improved:
            chosen = chosen.copy()
            chosen[candidates] = sub.chosen
            objective = inst.solver_objective(chosen)
            improvements += 1
            tracker.update(f"lns:{kind}", objective, bound)
        target = int(np.clip(target * (1.25 if sub.status == "OPTIMAL" else 0.8), 1500, 30000))
    stats.update(lns_moves=moves, lns_improvements=improvements)
    stats.setdefault("method", "lns mip")
    return chosen


def _pick(kind, rng, inst, chosen, alive, live_count, municipality, travel, profiles, target) -> np.ndarray:
    """Teachers of one neighbourhood, about `target` live options in all."""
    n_teachers = len(inst.need)
    if kind == "municipality":
        weights = np.bincount(municipality, weights=live_count, minlength=travel.shape[0])
        if weights.sum() == 0:
            return np.zeros(0, np.int64)
        centre = rng.choice(len(weights), p=weights / weights.sum())
        order = np.argsort(travel[centre][municipality] + rng.random(n_teachers) * 30, kind="stable")
    elif kind == "activity":
        residuals = Residuals(inst, chosen)
        full = np.flatnonzero(residuals.capacity[:] <= 0)
        if len(full) == 0:
            return _pick("random", rng, inst, chosen, alive, live_count, municipality, travel, profiles, target)
        activity = rng.choice(full)
        wanting = np.unique(inst.options.teacher[alive & (inst.options.activity == activity)])
        order = np.r_[rng.permutation(wanting), rng.permutation(n_teachers)]
    elif kind == "profile":
        label = rng.choice(np.unique(profiles))
        members = np.flatnonzero(profiles == label)
        order = np.r_[rng.permutation(members), rng.permutation(n_teachers)]
    else:
        order = rng.permutation(n_teachers)
    _, first = np.unique(order, return_index=True)
    order = order[np.sort(first)]
    total = np.cumsum(live_count[order])
    return order[: max(1, int(np.searchsorted(total, target)))]
