"""The planning instance the solvers share: activities, options and needs, plus the plan value.

Solvers work on option indices (rows of `Options`); a plan is a boolean vector over options.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..needs import need_matrix
from ..options import Activities, Options, build_activities, build_options
from ..params import Params
from ..region import RegionData
from ..rules import PlanArrays
from .pools import Pools, pool_activities


@dataclass
class Instance:
    region: RegionData
    params: Params
    activities: Activities
    options: Options
    need: np.ndarray  # teachers x competencies
    # Per option, gathered once: what it costs in objective points and what it uses.
    cost_points: np.ndarray
    kind: np.ndarray
    hours: np.ndarray
    voucher_rub: np.ndarray
    budget_rub: np.ndarray
    municipality: np.ndarray  # the municipality that pays (the teacher's)
    limits: np.ndarray  # per kind: 1 mentor, max_internships, max_programs
    # Points the solvers add for choosing an option, e.g. to keep a previous plan's assignments
    # (>= 0: a bound on objective + bonus is a bound on the objective), or less than 0 where an
    # activity is priced from outside the region (a nation's federal rows, engine.nation_solve).
    # The objective reported is always SPEC's.
    bonus: np.ndarray | None = None
    # With pools (engine.solver.pools), `activities` are the solver's: a pool of interchangeable
    # sessions or mentors is one; plans leave the engine split back into the region's (`real_plan`).
    pools: Pools | None = None

    @classmethod
    def build(cls, region: RegionData, params: Params, keep: list | None = None,
              keep_bonus: float = 0.0, pool: bool = False, worthwhile: bool = False,
              activity_price: np.ndarray | None = None) -> "Instance":
        """`keep`: assignments (AssignmentRef) that earn `keep_bonus` points each if kept. `pool`: pool
        interchangeable activities (same optimum, fewer options; see engine.solver.pools). `worthwhile`: only
        options of positive value alone, pinned and kept ones aside (same optimum; engine.options; a price
        only lowers an option's value, so none is lost). `activity_price`: points charged per region
        activity chosen, on top of SPEC's cost (a nation's federal prices); it indexes the region's
        activities, so it goes without pooling."""
        if pool and activity_price is not None:
            raise ValueError("activity_price indexes the region's activities: it cannot be used with pools")
        activities = build_activities(region)
        pools = None
        if pool:
            named = [ref for ref in [*params.pinned, *params.forbidden, *(keep or [])]]
            alone = {a for a in (activities.lookup(r.kind, r.resource_id) for r in named) if a is not None}
            activities, pools = pool_activities(activities, alone)
        need = need_matrix(region, params)
        options = build_options(region, params, activities, need, extra=keep, worthwhile=worthwhile)
        act = options.activity
        bonus = np.zeros(len(options))
        if keep and keep_bonus > 0:
            bonus[options.find(region, activities, keep)] = keep_bonus
        if activity_price is not None:
            bonus -= activity_price[act]
        return cls(
            region=region, params=params, activities=activities, options=options, need=need,
            cost_points=activities.cost_rub[act] / params.rub_per_point,
            kind=activities.kind[act],
            hours=activities.hours[act],
            voucher_rub=activities.voucher_rub[act],
            budget_rub=activities.budget_rub[act],
            municipality=region.teacher_municipality[options.teacher],
            limits=np.array([1, params.max_internships, params.max_programs]),
            bonus=bonus,
            pools=pools,
        )

    @property
    def real_activities(self) -> Activities:
        """The region's activities (the solver's, when nothing is pooled)."""
        return self.activities if self.pools is None else self.pools.real

    def real_plan(self, chosen: np.ndarray) -> PlanArrays:
        """The plan of `chosen` (bool over options) over the region's activities, pools split back."""
        idx = np.flatnonzero(chosen)
        teacher, activity = self.options.teacher[idx], self.options.activity[idx]
        if self.pools is None:
            return PlanArrays(teacher, activity)
        return self.pools.split(teacher, activity)

    @cached_property
    def solver_cost(self) -> np.ndarray:
        """What the solvers minimise per option: cost in points less any bonus."""
        return self.cost_points if self.bonus is None else self.cost_points - self.bonus

    def solver_objective(self, chosen: np.ndarray) -> float:
        """The objective the solvers maximise: SPEC's plus the bonus of the chosen options."""
        extra = 0.0 if self.bonus is None else float(self.bonus[chosen].sum())
        return self.objective(chosen) + extra

    @property
    def n_options(self) -> int:
        return len(self.options)

    def teacher_values(self, chosen: np.ndarray) -> np.ndarray:
        """Objective contribution of each teacher for a plan given as a boolean vector over options."""
        idx = np.flatnonzero(chosen)
        teachers = self.options.teacher[idx]
        cover = np.zeros_like(self.need)
        np.add.at(cover, teachers, self.activities.weights[self.options.activity[idx]])
        value = (self.need * np.minimum(1.0, cover)).sum(axis=1)
        value -= np.bincount(teachers, weights=self.cost_points[idx], minlength=len(self.need))
        return value

    def objective(self, chosen: np.ndarray) -> float:
        """SPEC §5: sum of need * min(1, cover) minus cost / rub_per_point."""
        return float(self.teacher_values(chosen).sum())

    def routes_value(self, candidates: np.ndarray, chosen: np.ndarray) -> float:
        """What the solvers maximise (SPEC §5 plus any bonus), over the routes of the teachers owning
        `candidates`, when `chosen` (over `candidates`) are their assignments: for accepting a move."""
        idx = candidates[chosen]
        teachers = np.unique(self.options.teacher[candidates])
        cover = np.zeros((len(teachers), self.need.shape[1]))
        np.add.at(cover, np.searchsorted(teachers, self.options.teacher[idx]),
                  self.activities.weights[self.options.activity[idx]])
        return float((self.need[teachers] * np.minimum(1.0, cover)).sum() - self.solver_cost[idx].sum())

    def standalone_value(self, option_idx: np.ndarray) -> np.ndarray:
        """Value of each option taken alone: an upper bound on what it can add to any route."""
        w = self.activities.weights[self.options.activity[option_idx]]
        return (self.need[self.options.teacher[option_idx]] * np.minimum(1.0, w)).sum(axis=1) \
            - self.solver_cost[option_idx]
