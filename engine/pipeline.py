"""From a validated region to the plan's files: profiles, solve, plan."""

from __future__ import annotations

import time
from collections.abc import Callable

from .params import Params
from .plan import PlanFiles, deficit_profiles, plan_files
from .region import RegionData
from .solver import Progress, solve
from .solver.floor import FLOOR_SHARE, meet_floor


def plan_region(region: RegionData, params: Params, on_progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> PlanFiles:
    """Clusters deficit profiles (they shape the solver's neighbourhoods), solves and builds the plan.

    `params.time_limit_s` covers the clustering too: the solve gets what is left."""
    started = time.perf_counter()
    profiles = deficit_profiles(region, params, random_state=params.seed)
    left = max(1.0, params.time_limit_s - (time.perf_counter() - started))
    floor = bool(params.min_reached_share.active())
    result = solve(region, params.model_copy(update={"time_limit_s": left * (1 - FLOOR_SHARE) if floor else left}),
                   on_progress=on_progress, profiles=profiles.labels, should_stop=should_stop)
    if floor:  # the floor for the left-out, in the time kept for it (engine.solver.floor)
        def floor_progress(phase: str, objective: float) -> None:
            if on_progress:
                on_progress(Progress(time.perf_counter() - started, objective, None, phase))

        result = meet_floor(result, started + params.time_limit_s - 0.5, floor_progress)
    return plan_files(result, profiles)
