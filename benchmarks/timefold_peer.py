"""Timefold Solver as a peer (optional extra `.[peers]`, needs a JDK 17 `java`).

The `timefold` Python package is no longer developed upstream: Timefold halted development of the
Python solver on 11 July 2025 (TimefoldAI/timefold-solver#1281, discussion #1698), so its last
release is a beta, 1.24.0b0; the Java solver goes on. It is measured here because it is the
planning solver many teams reach for first.

Model (the same rules and objective as the other peers, on the same options):
- a planning entity per route slot: one mentor slot, `max_internships` internship slots and
  `max_programs` program slots per teacher, each with a nullable planning variable whose value range
  is that teacher's options of that kind (rule 2's counts hold by construction; rules 3-5 by the
  options);
- hard constraints: capacity (1), one session per site or program (2), no two overlapping dated
  sessions (6), hours (7), voucher (8), municipality and region budgets (9);
- soft: reward need * min(1, cover) per teacher, penalise cost / rub_per_point, in integer units
  (1e6 per objective point; covers in hundredths, exact for two-decimal weights).
Pinned assignments are not modelled (the benchmarks plan without any; a pinned one left out would
show as a broken plan). Timefold runs single-threaded (multi-threaded solving is in its commercial edition only). The JVM
start-up and the translation of the model into Java are timed apart from the solve: the time
limit covers building the instance and the solve, not starting the JVM.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from marshrut.engine.params import Params
from marshrut.engine.region import RegionData
from marshrut.engine.solver.instance import Instance

from .peers import PeerResult

from timefold.solver import SolverFactory  # noqa: E402  (starts nothing yet)
from timefold.solver._timefold_java_interop import ensure_init  # noqa: E402

_started = time.perf_counter()
ensure_init()  # the JVM
JVM_SECONDS = time.perf_counter() - _started
_started = time.perf_counter()
from timefold.solver.config import Duration, ScoreDirectorFactoryConfig, SolverConfig, TerminationConfig  # noqa: E402
from timefold.solver.domain import (PlanningEntityCollectionProperty, PlanningId, PlanningScore,  # noqa: E402
                                    PlanningVariable, ProblemFactCollectionProperty, ValueRangeProvider,
                                    planning_entity, planning_solution)
from timefold.solver.score import (ConstraintCollectors, ConstraintFactory, HardSoftScore, Joiners,  # noqa: E402
                                   constraint_provider)

POINT = 1_000_000  # score units per objective point
COVER = 100  # cover units (weights in hundredths)


class Region:
    def __init__(self, budget: int) -> None:
        self.budget = budget


class Municipality:
    def __init__(self, index: int, budget: int, region: Region) -> None:
        self.index = index
        self.budget = budget  # -1: no row, no limit
        self.region = region


class Teacher:
    def __init__(self, index: int, max_hours: int, voucher: int, municipality: Municipality,
                 comps: list[int], needs: list[int]) -> None:
        self.index = index
        self.max_hours = max_hours  # hundredths of an hour
        self.voucher = voucher
        self.municipality = municipality
        self.comps = comps  # competencies with a need
        self.needs = needs  # need * POINT / COVER, rounded


class Activity:
    def __init__(self, index: int, capacity: int, group: int, dated: bool, start: int, end: int, hours: int,
                 price: int, budget: int, cost: int, weights: list[int]) -> None:
        self.index = index
        self.capacity = capacity
        self.group = group
        self.dated = dated
        self.start = start
        self.end = end
        self.hours = hours
        self.price = price
        self.budget = budget
        self.cost = cost  # cost / rub_per_point in score units
        self.weights = weights  # per competency, hundredths


@planning_entity
@dataclass
class Slot:
    id: Annotated[int, PlanningId]
    teacher: Teacher
    options: Annotated[list[Activity], ValueRangeProvider(id="options")]
    activity: Annotated[Activity | None, PlanningVariable(value_range_provider_refs=["options"],
                                                          allows_unassigned=True)] = field(default=None)


@planning_solution
@dataclass
class Routes:
    teachers: Annotated[list[Teacher], ProblemFactCollectionProperty]
    activities: Annotated[list[Activity], ProblemFactCollectionProperty]
    slots: Annotated[list[Slot], PlanningEntityCollectionProperty]
    score: Annotated[HardSoftScore | None, PlanningScore] = field(default=None)


def cover_value(teacher: Teacher, activities: list) -> int:
    total = 0
    for k in range(len(teacher.comps)):
        c = teacher.comps[k]
        s = 0
        for a in activities:
            s += a.weights[c]
        total += teacher.needs[k] * min(s, COVER)
    return total


def overlap(a: Activity, b: Activity) -> bool:
    if a.group >= 0 and a.group == b.group:
        return True
    return a.dated and b.dated and a.start <= b.end and b.start <= a.end


@constraint_provider
def route_constraints(cf: ConstraintFactory):
    return [
        cf.for_each(Slot).filter(lambda s: s.activity is not None)
        .group_by(lambda s: s.activity, ConstraintCollectors.count())
        .filter(lambda a, n: n > a.capacity)
        .penalize(HardSoftScore.ONE_HARD, lambda a, n: n - a.capacity).as_constraint("1 capacity"),
        cf.for_each_unique_pair(Slot, Joiners.equal(lambda s: s.teacher))
        .filter(lambda s, r: s.activity is not None and r.activity is not None and overlap(s.activity, r.activity))
        .penalize(HardSoftScore.ONE_HARD).as_constraint("2 and 6 one session per group, no overlap"),
        cf.for_each(Slot).filter(lambda s: s.activity is not None)
        .group_by(lambda s: s.teacher, ConstraintCollectors.sum(lambda s: s.activity.hours))
        .filter(lambda t, h: h > t.max_hours)
        .penalize(HardSoftScore.ONE_HARD, lambda t, h: h - t.max_hours).as_constraint("7 hours"),
        cf.for_each(Slot).filter(lambda s: s.activity is not None and s.activity.price > 0)
        .group_by(lambda s: s.teacher, ConstraintCollectors.sum(lambda s: s.activity.price))
        .filter(lambda t, p: p > t.voucher)
        .penalize(HardSoftScore.ONE_HARD, lambda t, p: 1 + (p - t.voucher) // 1000).as_constraint("8 voucher"),
        cf.for_each(Slot).filter(lambda s: s.activity is not None and s.activity.budget > 0
                                 and s.teacher.municipality.budget >= 0)
        .group_by(lambda s: s.teacher.municipality, ConstraintCollectors.sum(lambda s: s.activity.budget))
        .filter(lambda m, b: b > m.budget)
        .penalize(HardSoftScore.ONE_HARD, lambda m, b: 1 + (b - m.budget) // 1000).as_constraint("9 municipal"),
        cf.for_each(Slot).filter(lambda s: s.activity is not None and s.activity.budget > 0)
        .group_by(lambda s: s.teacher.municipality.region, ConstraintCollectors.sum(lambda s: s.activity.budget))
        .filter(lambda r, b: b > r.budget)
        .penalize(HardSoftScore.ONE_HARD, lambda r, b: 1 + (b - r.budget) // 1000).as_constraint("9 region"),
        cf.for_each(Slot).filter(lambda s: s.activity is not None)
        .group_by(lambda s: s.teacher, ConstraintCollectors.to_list(lambda s: s.activity))
        .reward(HardSoftScore.ONE_SOFT, lambda t, acts: cover_value(t, acts)).as_constraint("cover"),
        cf.for_each(Slot).filter(lambda s: s.activity is not None)
        .penalize(HardSoftScore.ONE_SOFT, lambda s: s.activity.cost).as_constraint("cost"),
    ]


DOMAIN_SECONDS = time.perf_counter() - _started  # the decorators translate the classes to Java


def _problem(inst: Instance) -> tuple[Routes, list[Slot]]:
    region, acts, opts = inst.region, inst.activities, inst.options
    reg = Region(int(region.budgets.region_rub))
    municipalities = [Municipality(m, int(b), reg) for m, b in enumerate(region.budgets.municipality_rub)]
    used = np.unique(opts.activity)
    weights = np.round(acts.weights * COVER).astype(int)
    cost = np.round(acts.cost_rub * POINT / inst.params.rub_per_point).astype(int)
    activities = {int(a): Activity(int(a), int(acts.capacity[a]), int(acts.group[a]), bool(acts.dated[a]),
                                   int(acts.start[a]), int(acts.end[a]), int(round(acts.hours[a] * 100)),
                                   int(acts.voucher_rub[a]), int(acts.budget_rub[a]), int(cost[a]),
                                   weights[a].tolist()) for a in used.tolist()}
    teachers, slots = [], []
    municipality = region.teacher_municipality
    for t in range(len(inst.need)):
        lo, hi = int(opts.first[t]), int(opts.first[t + 1])
        if lo == hi:
            continue
        comps = np.flatnonzero(inst.need[t] > 0)
        teacher = Teacher(t, int(round(region.teachers.max_hours[t] * 100)), int(region.teachers.voucher_rub[t]),
                          municipalities[municipality[t]], comps.tolist(),
                          np.ceil(inst.need[t, comps] * POINT / COVER).astype(int).tolist())
        teachers.append(teacher)
        kinds = inst.kind[lo:hi]
        for k in range(3):
            options = [activities[int(a)] for a in opts.activity[lo:hi][kinds == k].tolist()]
            for _ in range(min(int(inst.limits[k]), len(options))):
                slots.append(Slot(len(slots), teacher, options))
    return Routes(teachers, list(activities.values()), slots), slots


def timefold_peer(region: RegionData, params: Params, time_limit: float, on_progress=None) -> PeerResult:
    started = time.perf_counter()
    inst = Instance.build(region, params)
    problem, slots = _problem(inst)
    build_seconds = time.perf_counter() - started
    history: list[tuple[float, float, float | None]] = []
    stats = {"options": inst.n_options, "slots": len(slots), "jvm_start_seconds": round(JVM_SECONDS, 3),
             "domain_translation_seconds": round(DOMAIN_SECONDS, 3), "threads": 1}
    left = time_limit - build_seconds
    if left <= 0.5:
        stats["note"] = "no time left to solve after building the model"
        return PeerResult(inst, None, "NO_PLAN", None, time.perf_counter() - started, history, stats)
    translate_started = time.perf_counter()
    config = SolverConfig(solution_class=Routes, entity_class_list=[Slot],
                          score_director_factory_config=ScoreDirectorFactoryConfig(
                              constraint_provider_function=route_constraints),
                          termination_config=TerminationConfig(spent_limit=Duration(milliseconds=1)))
    factory = SolverFactory.create(config)
    stats["translate_seconds"] = round(time.perf_counter() - translate_started, 3)
    left = time_limit - (time.perf_counter() - started)
    if left <= 0.5:
        stats["note"] = "no time left to solve after translating the model to Java"
        return PeerResult(inst, None, "NO_PLAN", None, time.perf_counter() - started, history, stats)
    from timefold.solver.config import SolverConfigOverride
    solver = factory.build_solver(SolverConfigOverride(termination_config=TerminationConfig(
        spent_limit=Duration(milliseconds=int(left * 1000)))))

    def best(event) -> None:
        score = event.new_best_score
        if score.hard_score == 0 and getattr(score, "init_score", 0) == 0:
            history.append((time.perf_counter() - started, score.soft_score / POINT, None))
    solver.add_event_listener(best)
    solve_started = time.perf_counter()
    # The spent limit starts after Timefold has converted the problem to Java (seconds at this size):
    # a timer holds it to the same wall-clock limit as the other solvers.
    timer = threading.Timer(max(0.1, left), solver.terminate_early)
    timer.start()
    try:
        solution = solver.solve(problem)
    finally:
        timer.cancel()
    stats["solve_seconds"] = round(time.perf_counter() - solve_started, 3)
    stats["score"] = str(solution.score)
    stats["note"] = (f"JVM start {JVM_SECONDS:.1f} s and domain translation {DOMAIN_SECONDS:.1f} s not counted; "
                     f"solve {stats['solve_seconds']:.1f} s")
    seconds = time.perf_counter() - started
    if solution.score is None or solution.score.hard_score < 0:
        stats["note"] = f"no feasible plan (score {solution.score})"
        return PeerResult(inst, None, "NO_PLAN", None, seconds, history, stats)
    chosen = np.zeros(inst.n_options, dtype=bool)
    opts = inst.options
    for slot in solution.slots:
        if slot.activity is not None:
            t = slot.teacher.index
            lo, hi = int(opts.first[t]), int(opts.first[t + 1])
            chosen[lo + int(np.searchsorted(opts.activity[lo:hi], slot.activity.index))] = True
    objective = inst.objective(chosen)
    history.append((seconds, objective, None))
    return PeerResult(inst, chosen, "FEASIBLE", None, seconds, history, stats)
